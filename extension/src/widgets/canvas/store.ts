/**
 * The canvas state shared by the konva stage and the React panel: the document with its
 * undo history, layer pixels, tool settings and the staging area. Every document change is
 * synced to the kernel (layer positions, box, mask PNG of the box), debounced.
 */
import type { Dispatcher } from "../../shared/messages";
import { type Doc, type LayerDoc, type MaskOp, type Rect } from "./doc";
import { History } from "./history";
import { generationMode, hasPaint, type Mode } from "./mode";
import type { Events, Methods, StagedItem } from "./protocol";
import { compositeCanvas, imageFromBytes, maskCanvas, pixels, toPng, type Images } from "./raster";

export type Tool = "move" | "brush" | "eraser" | "bbox" | "pan";

export interface Staged extends StagedItem {
  image: HTMLImageElement;
}

export class CanvasStore {
  history = new History<Doc>({ layers: [], mask: [], bbox: { x: 0, y: 0, width: 512, height: 512 } });
  images: Images = new Map();
  bitmaps: Images = new Map();
  tool: Tool = "brush";
  brushSize = 24;
  selected: string | null = null;
  staged: Staged[] = [];
  stagedIndex = 0;
  mode: Mode | null = null;
  error: string | null = null;
  syncing = 0;
  private listeners = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private version = 0;

  constructor(readonly rpc: Dispatcher<Methods, Events>) {
    rpc.on("layer_added", (l, buffers) => void this.addLayerFromKernel(l, buffers[0]));
    rpc.on("layer_removed", ({ id }) => this.commit({ ...this.doc, layers: this.doc.layers.filter((l) => l.id !== id) }));
    rpc.on("staging", (s, buffers) => void this.setStaging(s.items, buffers));
    rpc.on("staging_cleared", () => {
      this.staged = [];
      this.emit();
    });
    rpc.on("generation_error", ({ message }) => this.fail(message));
  }

  get doc(): Doc {
    return this.history.current;
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }

  get snapshot(): number {
    return this.version;
  }

  fail(message: string): void {
    this.error = message;
    this.emit();
  }

  set<K extends "tool" | "brushSize" | "selected" | "stagedIndex">(key: K, value: CanvasStore[K]): void {
    (this as CanvasStore)[key] = value;
    this.emit();
  }

  /** A new document state, with a history entry, synced to the kernel. */
  commit(doc: Doc): void {
    this.history.push(doc);
    this.changed();
  }

  undo(): void {
    this.history.undo();
    this.changed();
  }

  redo(): void {
    this.history.redo();
    this.changed();
  }

  private changed(): void {
    if (this.selected && !this.doc.layers.some((l) => l.id === this.selected)) this.selected = null;
    this.emit();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync();
    }, 120);
  }

  addMaskOp(op: MaskOp): void {
    this.commit({ ...this.doc, mask: [...this.doc.mask, op] });
  }

  updateLayer(id: string, patch: Partial<LayerDoc>): void {
    this.commit({ ...this.doc, layers: this.doc.layers.map((l) => (l.id === id ? { ...l, ...patch } : l)) });
  }

  setBox(bbox: Rect): void {
    this.commit({ ...this.doc, bbox });
  }

  /** The document from the kernel (first render, or the widget shown again). */
  async load(): Promise<void> {
    const { result, buffers } = await this.rpc.request("init", {});
    const imgs = await Promise.all(buffers.map((b) => imageFromBytes(b)));
    result.layers.forEach((l, i) => this.images.set(l.id, imgs[i]));
    const mask: MaskOp[] = [];
    if (result.mask) {
      this.bitmaps.set("init", imgs[result.layers.length]);
      mask.push({ kind: "bitmap", rect: result.bbox, key: "init" });
    }
    this.history.reset({ layers: result.layers, mask, bbox: result.bbox });
    this.emit();
    await this.sync();
  }

  private async addLayerFromKernel(l: LayerDoc, buf: DataView): Promise<void> {
    this.images.set(l.id, await imageFromBytes(buf));
    this.commit({ ...this.doc, layers: [...this.doc.layers.filter((x) => x.id !== l.id), l] });
  }

  private async setStaging(items: StagedItem[], buffers: DataView[]): Promise<void> {
    const imgs = await Promise.all(buffers.map((b) => imageFromBytes(b)));
    this.staged = items.map((it, i) => ({ ...it, image: imgs[i] }));
    this.stagedIndex = Math.max(0, this.staged.length - 1);
    this.emit();
  }

  /** Send the layer positions, the box and the mask of the box to the kernel. */
  async sync(): Promise<void> {
    const doc = this.doc;
    const mask = maskCanvas(doc, doc.bbox, this.bitmaps);
    const painted = hasPaint(pixels(mask));
    this.mode = generationMode(pixels(compositeCanvas(doc, doc.bbox, this.images)), painted ? pixels(mask) : null);
    this.syncing++;
    this.emit();
    try {
      const buffers = painted ? [await toPng(mask)] : [];
      await this.rpc.request(
        "sync",
        {
          bbox: doc.bbox,
          layers: doc.layers.map(({ id, x, y, scale_x, scale_y, visible, opacity, name }) => ({ id, x, y, scale_x, scale_y, visible, opacity, name })),
          mask_empty: !painted,
        },
        buffers,
      );
    } catch (e) {
      this.fail((e as Error).message);
    } finally {
      this.syncing--;
      this.emit();
    }
  }

  /** Wait until the kernel has the latest document (before generating). */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.sync();
    }
    while (this.syncing > 0) await new Promise((r) => setTimeout(r, 20));
  }
}
