/**
 * The canvas state shared by the konva stage and the React panel: the document with its
 * undo history, layer pixels, tool settings and the staging area. Every document change is
 * synced to the kernel (layers with their kind and control settings, box, mask PNG of the
 * box, each region's mask PNG and prompts, reference image settings), debounced.
 */
import type { Dispatcher } from "../../shared/messages";
import { regionColor, type ControlDoc, type Doc, type LayerDoc, type MaskOp, type Rect, type RegionDoc } from "./doc";
import { History } from "./history";
import { generationMode, hasPaint, type Mode } from "./mode";
import type { Events, Methods, ModelRow, ReferenceDoc, RegionInfo, StagedItem } from "./protocol";
import { compositeCanvas, imageFromBytes, maskCanvas, pixels, toPng, type Images } from "./raster";

export type Tool = "move" | "brush" | "eraser" | "bbox" | "pan";

export interface Staged extends StagedItem {
  image: HTMLImageElement;
}

/** What a brush stroke paints: the inpaint mask or a region's mask (by id). */
export const INPAINT = "inpaint";

export class CanvasStore {
  history = new History<Doc>({ layers: [], mask: [], bbox: { x: 0, y: 0, width: 512, height: 512 }, regions: [], references: [] });
  images: Images = new Map();
  bitmaps: Images = new Map();
  refImages = new Map<string, HTMLImageElement>();
  models: { main: ModelRow[]; control: ModelRow[]; ip: ModelRow[] } = { main: [], control: [], ip: [] };
  target: string = INPAINT;
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
    rpc.on("region_added", (r, buffers) => void this.regionFromKernel(r, r.rect, buffers[0]));
    rpc.on("reference_added", (r, buffers) => void this.referenceFromKernel(r, buffers[0]));
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

  set<K extends "tool" | "brushSize" | "selected" | "stagedIndex" | "target">(key: K, value: CanvasStore[K]): void {
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
    if (this.target !== INPAINT && !this.doc.regions.some((r) => r.id === this.target)) this.target = INPAINT;
    this.emit();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync();
    }, 120);
  }

  /** A brush/eraser/invert/clear operation on what is being painted (the inpaint mask or a region). */
  addMaskOp(op: MaskOp, target = this.target): void {
    if (target === INPAINT) this.commit({ ...this.doc, mask: [...this.doc.mask, op] });
    else this.commit({ ...this.doc, regions: this.doc.regions.map((r) => (r.id === target ? { ...r, ops: [...r.ops, op] } : r)) });
  }

  /** The settings a layer gets when it becomes a control layer: the first control model,
   * with InvokeAI's defaults for a new ControlNet (0.75, until 75%) or T2I-Adapter layer. */
  defaultControl(): ControlDoc {
    const m = this.models.control[0];
    const t2i = m?.type === "t2i_adapter";
    return { model: m?.key ?? null, weight: t2i ? 1 : 0.75, begin: 0, end: t2i ? 1 : 0.75, mode: "balanced" };
  }

  /** A new, empty regional guidance layer, made the paint target. */
  addRegion(): string {
    const n = this.doc.regions.length;
    const id = `region_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    const region: RegionDoc = { id, name: `region ${n + 1}`, prompt: "", negative: "", visible: true, color: regionColor(n), ops: [] };
    this.target = id;
    this.commit({ ...this.doc, regions: [...this.doc.regions, region] });
    return id;
  }

  updateRegion(id: string, patch: Partial<RegionDoc>): void {
    this.commit({ ...this.doc, regions: this.doc.regions.map((r) => (r.id === id ? { ...r, ...patch } : r)) });
  }

  /** Delete a region and its reference images. */
  removeRegion(id: string): void {
    this.commit({ ...this.doc, regions: this.doc.regions.filter((r) => r.id !== id), references: this.doc.references.filter((r) => r.region !== id) });
  }

  updateReference(id: string, patch: Partial<ReferenceDoc>): void {
    this.commit({ ...this.doc, references: this.doc.references.map((r) => (r.id === id ? { ...r, ...patch } : r)) });
  }

  removeReference(id: string): void {
    this.commit({ ...this.doc, references: this.doc.references.filter((r) => r.id !== id) });
  }

  private async regionFromKernel(r: RegionInfo, rect: Rect, buf: DataView): Promise<void> {
    const key = `region:${r.id}`;
    this.bitmaps.set(key, await imageFromBytes(buf));
    const n = this.doc.regions.length;
    const region: RegionDoc = { ...r, color: regionColor(n), ops: [{ kind: "bitmap", rect, key }] };
    this.commit({ ...this.doc, regions: [...this.doc.regions.filter((x) => x.id !== r.id), region] });
  }

  private async referenceFromKernel(r: ReferenceDoc, buf: DataView): Promise<void> {
    this.refImages.set(r.id, await imageFromBytes(buf));
    const ref = { ...r, model: r.model ?? this.models.ip[0]?.key ?? null };
    this.commit({ ...this.doc, references: [...this.doc.references.filter((x) => x.id !== r.id), ref] });
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
    let next = result.layers.length;
    const mask: MaskOp[] = [];
    if (result.mask) {
      this.bitmaps.set("init", imgs[next++]);
      mask.push({ kind: "bitmap", rect: result.bbox, key: "init" });
    }
    const regions = result.regions.map((r, n): RegionDoc => {
      const key = `region:${r.id}`;
      this.bitmaps.set(key, imgs[next++]);
      return { ...r, color: regionColor(n), ops: [{ kind: "bitmap", rect: result.bbox, key }] };
    });
    result.references.forEach((r) => this.refImages.set(r.id, imgs[next++]));
    this.history.reset({ layers: result.layers, mask, bbox: result.bbox, regions, references: result.references });
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
      const regions = [];
      for (const r of doc.regions) {
        const c = maskCanvas(doc, doc.bbox, this.bitmaps, r.ops);
        const regionPainted = hasPaint(pixels(c));
        if (regionPainted) buffers.push(await toPng(c));
        regions.push({ id: r.id, name: r.name, prompt: r.prompt, negative: r.negative, visible: r.visible, mask_empty: !regionPainted });
      }
      await this.rpc.request(
        "sync",
        {
          bbox: doc.bbox,
          layers: doc.layers.map(({ id, x, y, scale_x, scale_y, visible, opacity, name, kind, control }) => ({
            id, x, y, scale_x, scale_y, visible, opacity, name, kind: kind ?? "raster", control: kind === "control" ? (control ?? null) : null,
          })),
          mask_empty: !painted,
          regions,
          references: doc.references.map(({ id, model, weight, begin, end, method, clip_vision_model, region }) => ({
            id, model, weight, begin, end, method, clip_vision_model, region,
          })),
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
