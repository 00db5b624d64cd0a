/** The canvas's side of the kernel boundary (mirrors invoke_nb/widgets/canvas.py). */
import type { LayerDoc, Rect } from "./doc";
import type { Mode } from "./mode";

export interface Settings {
  prompt: string;
  negative: string;
  model: string | null;
  steps: number;
  cfg_scale: number;
  scheduler: string;
  seed: number | null;
  strength: number;
}

export interface LayerState {
  id: string;
  x: number;
  y: number;
  scale_x: number;
  scale_y: number;
  visible: boolean;
  opacity: number;
  name?: string;
}

export interface StagedItem {
  image_name: string;
  width: number;
  height: number;
}

export type Methods = {
  init: [Record<string, never>, { layers: LayerDoc[]; bbox: Rect; mask: boolean }];
  models: [Record<string, never>, { models: { key: string; name: string; base: string }[] }];
  recent_images: [{ limit?: number }, { images: StagedItem[] }];
  add_image: [{ image_name: string; x?: number; y?: number }, { id: string }];
  add_file: [{ name: string; x?: number; y?: number }, { id: string }];
  sync: [{ bbox: Rect; layers: LayerState[]; mask_empty: boolean }, { mode: Mode }];
  generate: [Settings, { mode: Mode }];
  accept: [{ index: number }, { id: string }];
  discard: [{ index?: number | null }, { staged: number }];
};

export type Events = {
  layer_added: LayerDoc;
  layer_removed: { id: string };
  staging: { items: StagedItem[] };
  staging_cleared: Record<string, never>;
  generation_error: { message: string };
};
