/**
 * Auto-layout for graphs without positions (built in Python, or InvokeAI's `invokeai_graph`):
 * layers left to right as InvokeAI's workflow editor draws graphs, in flow coordinates
 * (top-left corners); and the viewport that shows a graph at a readable zoom.
 *
 * Why not dagre (which this replaced): its long-edge dummy nodes and alignment spread the
 * standard txt2img graph (a loader feeding three layers) 1,600 px tall for 1,270 px wide;
 * plain columns, centred, keep it as wide as it is deep.
 */
import type { GraphJSON, XY } from "./protocol";

export interface Size {
  width: number;
  height: number;
}

export interface LayoutOptions {
  /** vertical gap between nodes of one layer */
  nodeGap?: number;
  /** horizontal gap between layers */
  layerGap?: number;
  margin?: number;
}

/**
 * Layers, left to right: every node one layer right of its furthest input; a node without
 * inputs (a prompt, a seed) sits just left of its first consumer instead of far left.
 * Nodes on a cycle (a graph being edited may hold one) stay in layer 0.
 */
export function layers(graph: GraphJSON): string[][] {
  const ids = Object.keys(graph.nodes);
  const preds = new Map<string, string[]>(ids.map((id) => [id, []]));
  const succs = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of graph.edges) {
    const s = e.source.node_id;
    const d = e.destination.node_id;
    if (!preds.has(s) || !preds.has(d) || s === d) continue;
    preds.get(d)!.push(s);
    succs.get(s)!.push(d);
  }
  // Kahn's order, then longest path from the sources
  const indeg = new Map(ids.map((id) => [id, new Set(preds.get(id)).size]));
  const order: string[] = [];
  const ready = ids.filter((id) => indeg.get(id) === 0);
  while (ready.length) {
    const id = ready.shift()!;
    order.push(id);
    for (const d of new Set(succs.get(id))) {
      indeg.set(d, indeg.get(d)! - 1);
      if (indeg.get(d) === 0) ready.push(d);
    }
  }
  const rank = new Map<string, number>(ids.map((id) => [id, 0]));
  for (const id of order) for (const p of preds.get(id)!) rank.set(id, Math.max(rank.get(id)!, rank.get(p)! + 1));
  for (const id of [...order].reverse()) {
    const out = succs.get(id)!;
    if (preds.get(id)!.length === 0 && out.length) rank.set(id, Math.min(...out.map((d) => rank.get(d)!)) - 1);
  }
  const count = Math.max(0, ...rank.values()) + 1;
  const out: string[][] = Array.from({ length: count }, () => []);
  for (const id of ids) out[rank.get(id)!].push(id);
  // order each layer by the mean position of its inputs (a few sweeps both ways), so edges cross less
  const position = new Map<string, number>();
  const place = (layer: string[]) => layer.forEach((id, i) => position.set(id, i / Math.max(1, layer.length - 1)));
  out.forEach(place);
  const mean = (xs: string[]) => (xs.length ? xs.reduce((a, x) => a + position.get(x)!, 0) / xs.length : -1);
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    const seq = down ? out.slice(1) : out.slice(0, -1).reverse();
    for (const layer of seq) {
      const key = new Map(layer.map((id) => [id, mean(down ? preds.get(id)! : succs.get(id)!)]));
      layer.sort((a, b) => (key.get(a)! < 0 || key.get(b)! < 0 ? 0 : key.get(a)! - key.get(b)!));
      place(layer);
    }
  }
  return out;
}

/**
 * Positions (top-left corners, flow coordinates) for a graph without them: built in Python,
 * or InvokeAI's `invokeai_graph`. Layers left to right as InvokeAI's workflow editor shows
 * graphs; each layer a column of its nodes, columns centred on one line.
 */
export function layeredLayout(
  graph: GraphJSON,
  sizeOf: (id: string) => Size = () => ({ width: 240, height: 160 }),
  { nodeGap = 30, layerGap = 70, margin = 20 }: LayoutOptions = {},
): Record<string, XY> {
  const cols = layers(graph);
  const size = new Map(Object.keys(graph.nodes).map((id) => [id, sizeOf(id)]));
  const heights = cols.map((c) => c.reduce((h, id) => h + size.get(id)!.height, 0) + nodeGap * Math.max(0, c.length - 1));
  const tallest = Math.max(0, ...heights);
  const out: Record<string, XY> = {};
  let x = margin;
  cols.forEach((col, i) => {
    const width = Math.max(0, ...col.map((id) => size.get(id)!.width));
    let y = margin + (tallest - heights[i]) / 2;
    for (const id of col) {
      const s = size.get(id)!;
      out[id] = { x: Math.round(x + (width - s.width) / 2), y: Math.round(y) };
      y += s.height + nodeGap;
    }
    x += width + layerGap;
  });
  return out;
}

export interface Rect extends XY, Size {}

/** The first place near `at` where a box of `size` overlaps none of `taken` (with a gap). */
export function freeSpot(at: XY, size: Size, taken: Rect[], gap = 24): XY {
  const hits = (p: XY) =>
    taken.some(
      (r) =>
        p.x < r.x + r.width + gap && p.x + size.width + gap > r.x && p.y < r.y + r.height + gap && p.y + size.height + gap > r.y,
    );
  const step = { x: size.width / 2 + gap, y: size.height / 2 + gap };
  // walk outwards ring by ring: right and down first, as people read
  for (let ring = 0; ring < 20; ring++) {
    for (let dy = 0; dy <= ring; dy++) {
      for (const [i, j] of [
        [ring, dy],
        [dy, ring],
        [-ring, dy],
        [dy, -ring],
      ]) {
        const p = { x: Math.round(at.x + i * step.x), y: Math.round(at.y + j * step.y) };
        if (!hits(p)) return p;
      }
    }
  }
  return at;
}

export interface Viewport extends XY {
  zoom: number;
}

/** Below this zoom node titles are too small to read: a larger graph is panned, not shrunk. */
export const MIN_FIT_ZOOM = 0.5;

/**
 * The viewport that fits `bounds` (flow coordinates) in a pane, zoom clamped to
 * [minZoom, maxZoom]. Each axis is centred when the graph fits along it; when it does not
 * (zoom held at `minZoom`), the graph's left or top edge is shown, where reading starts.
 */
export function fitViewport(bounds: Rect, pane: Size, pad = 24, minZoom = MIN_FIT_ZOOM, maxZoom = 1): Viewport {
  const room = { width: Math.max(1, pane.width - 2 * pad), height: Math.max(1, pane.height - 2 * pad) };
  const fit = Math.min(room.width / Math.max(1, bounds.width), room.height / Math.max(1, bounds.height));
  const zoom = Math.max(minZoom, Math.min(maxZoom, fit));
  const axis = (start: number, size: number, paneSize: number, roomSize: number) =>
    size * zoom <= roomSize ? (paneSize - size * zoom) / 2 - start * zoom : pad - start * zoom;
  return {
    x: axis(bounds.x, bounds.width, pane.width, room.width),
    y: axis(bounds.y, bounds.height, pane.height, room.height),
    zoom,
  };
}
