/** The gallery's side of the kernel boundary (mirrors invoke_nb/widgets/gallery.py). */

import type { GalleryFilter, GalleryQuery } from "./query";

/** The gallery's filters, generated from GalleryQuery in gallery.py (see query.ts). */
export type Filter = GalleryFilter;

/** One row of a page's Arrow table (PAGE_SCHEMA in gallery.py). */
export interface ImageRow {
  image_name: string;
  width: number;
  height: number;
  starred: boolean;
  board_id: string | null;
  positive_prompt: string | null;
  model_name: string | null;
  seed: number | null;
  created_at: string;
  has_thumbnail: boolean;
}

/** A row plus its thumbnail as a `data:` URL (freed with the page when it leaves the cache). */
export interface Tile extends ImageRow {
  url: string | null;
}

export interface BoardInfo {
  board_id: string;
  board_name: string;
  image_count: number;
}

export interface Boards {
  boards: BoardInfo[];
  all: number;
  uncategorized: number;
  starred: number;
  uncategorized_id: string;
}

export interface Detail {
  image_name: string;
  width: number;
  height: number;
  starred: boolean;
  board_id: string | null;
  board_name: string | null;
  created_at: string;
  model_name: string | null;
  model_base: string | null;
  positive_prompt: string | null;
  negative_prompt: string | null;
  seed: number | null;
  steps: number | null;
  cfg_scale: number | null;
  scheduler: string | null;
  source: string | null;
  metadata: Record<string, unknown>;
}

type Names = { names: string[] };

export type Methods = {
  page: [GalleryQuery, { offset: number; count: number; total: number }];
  names: [GalleryQuery, string[]];
  boards: [Record<string, never>, Boards];
  create_board: [{ name: string }, { board_id: string; board_name: string }];
  star: [Names & { starred: boolean }, { changed: number }];
  move: [Names & { board_id: string | null }, { changed: number }];
  delete: [Names & { confirm: boolean }, { deleted: number }];
  detail: [{ name: string }, Detail];
  recall: [{ name: string }, { nodes: number; listeners: number }];
  use: [{ name: string; purpose: "img2img" | "canvas" }, { listeners: number }];
  rerun: [{ name: string; seed?: number | null }, { item_ids: number[]; seed: number }];
};

export type Events = {
  changed: { reason: string };
  image_added: { image_name: string };
  preview: { item_id: number; step: number | null; total: number | null; fraction: number | null };
  preview_done: { item_id: number };
};
