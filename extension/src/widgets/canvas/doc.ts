import type { ReferenceDoc } from "./protocol";
/**
 * The canvas document: raster and control layers (pixels kept beside it, by id), the inpaint
 * mask and each regional guidance layer's mask as lists of drawing operations, reference
 * images (pixels in the kernel), and the generation box. Immutable values, so undo/redo is a
 * list of snapshots and drawing replays the operations.
 */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export type LayerKind = "raster" | "control";

export interface ControlDoc {
  model: string | null;
  weight: number;
  begin: number;
  end: number;
  mode: "balanced" | "more_prompt" | "more_control" | "unbalanced";
}

export interface LayerDoc {
  id: string;
  name: string;
  width: number;
  height: number;
  x: number;
  y: number;
  scale_x: number;
  scale_y: number;
  visible: boolean;
  opacity: number;
  /** "raster" when absent */
  kind?: LayerKind;
  control?: ControlDoc | null;
}

export type MaskOp =
  | { kind: "stroke"; points: number[]; size: number; erase: boolean }
  | { kind: "invert"; rect: Rect }
  | { kind: "clear" }
  | { kind: "bitmap"; rect: Rect; key: string };

/** A regional guidance layer: its painted mask (operations) and prompts. */
export interface RegionDoc {
  id: string;
  name: string;
  prompt: string;
  negative: string;
  visible: boolean;
  color: string;
  ops: MaskOp[];
}

export interface Doc {
  layers: LayerDoc[];
  mask: MaskOp[];
  bbox: Rect;
  regions: RegionDoc[];
  references: ReferenceDoc[];
}

const REGION_COLORS = ["rgb(60, 140, 255)", "rgb(60, 200, 90)", "rgb(240, 170, 40)", "rgb(190, 80, 230)", "rgb(40, 200, 200)"];

/** The colour of the n-th region. */
export function regionColor(n: number): string {
  return REGION_COLORS[n % REGION_COLORS.length];
}

/** A new layer list with `id` made a control layer (with `control`) or a raster layer. */
export function setKind(layers: LayerDoc[], id: string, kind: LayerKind, control: ControlDoc | null): LayerDoc[] {
  return layers.map((l) => (l.id === id ? { ...l, kind, control: kind === "control" ? (l.control ?? control) : null } : l));
}

/** The operations that still count (everything after the last clear). */
export function liveOps(ops: MaskOp[]): MaskOp[] {
  let start = 0;
  ops.forEach((op, i) => {
    if (op.kind === "clear") start = i + 1;
  });
  return ops.slice(start);
}

/** The area the mask operations can touch (null when nothing is painted). */
export function maskExtent(ops: MaskOp[]): Rect | null {
  let x0 = Infinity,
    y0 = Infinity,
    x1 = -Infinity,
    y1 = -Infinity;
  const add = (ax: number, ay: number, bx: number, by: number) => {
    x0 = Math.min(x0, ax);
    y0 = Math.min(y0, ay);
    x1 = Math.max(x1, bx);
    y1 = Math.max(y1, by);
  };
  for (const op of liveOps(ops)) {
    if (op.kind === "stroke") {
      const r = op.size / 2 + 1;
      for (let i = 0; i < op.points.length; i += 2) add(op.points[i] - r, op.points[i + 1] - r, op.points[i] + r, op.points[i + 1] + r);
    } else if (op.kind === "invert" || op.kind === "bitmap") {
      add(op.rect.x, op.rect.y, op.rect.x + op.rect.width, op.rect.y + op.rect.height);
    }
  }
  if (x0 === Infinity) return null;
  const x = Math.floor(x0),
    y = Math.floor(y0);
  return { x, y, width: Math.ceil(x1) - x, height: Math.ceil(y1) - y };
}

/** Where a layer sits on the canvas, scaled. */
export function layerRect(l: LayerDoc): Rect {
  return { x: l.x, y: l.y, width: l.width * l.scale_x, height: l.height * l.scale_y };
}

/** The part of the document a view should show at first: the box and every layer. */
export function contentBounds(doc: Pick<Doc, "bbox" | "layers">): Rect {
  let r = doc.bbox;
  for (const l of doc.layers) {
    const b = layerRect(l);
    const x = Math.min(r.x, b.x),
      y = Math.min(r.y, b.y);
    r = { x, y, width: Math.max(r.x + r.width, b.x + b.width) - x, height: Math.max(r.y + r.height, b.y + b.height) - y };
  }
  return r;
}

/** A new layer order with `id` moved by `delta` places (bottom = 0). */
export function moveLayer(layers: LayerDoc[], id: string, delta: number): LayerDoc[] {
  const i = layers.findIndex((l) => l.id === id);
  const j = Math.max(0, Math.min(layers.length - 1, i + delta));
  if (i < 0 || i === j) return layers;
  const out = layers.slice();
  const [l] = out.splice(i, 1);
  out.splice(j, 0, l);
  return out;
}
