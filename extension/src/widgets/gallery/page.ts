/**
 * A gallery page as the kernel sends it: one Arrow IPC buffer whose `thumbnail` column holds
 * each image's WebP bytes (empty when the file is missing). One buffer per page instead of one
 * per thumbnail: fewer comm frames, one parse.
 */
import { readRecords } from "../../shared/arrow";
import type { ImageRow, Tile } from "./protocol";

type PageRow = ImageRow & { thumbnail?: Uint8Array | null };

/** Tiles of a page, each thumbnail as a blob URL (revoked when its page leaves the cache). */
export function readPage(buf: ArrayBuffer | ArrayBufferView): Tile[] {
  return (readRecords(buf) as unknown as PageRow[]).map(({ thumbnail, ...row }) => ({
    ...row,
    url: thumbnail && thumbnail.byteLength ? URL.createObjectURL(new Blob([thumbnail as BlobPart], { type: "image/webp" })) : null,
  }));
}
