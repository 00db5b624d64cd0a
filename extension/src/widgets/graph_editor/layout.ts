/**
 * Auto-layout for graphs without positions (built in Python, or InvokeAI's `invokeai_graph`):
 * dagre's layered layout, left to right, in flow coordinates (top-left corners).
 */
import dagre from "@dagrejs/dagre";
import type { GraphJSON, XY } from "./protocol";

export interface Size {
  width: number;
  height: number;
}

export function layeredLayout(
  graph: GraphJSON,
  sizeOf: (id: string) => Size = () => ({ width: 240, height: 160 }),
): Record<string, XY> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 80, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of Object.keys(graph.nodes)) g.setNode(id, { ...sizeOf(id) });
  for (const e of graph.edges) {
    if (graph.nodes[e.source.node_id] && graph.nodes[e.destination.node_id]) {
      g.setEdge(e.source.node_id, e.destination.node_id);
    }
  }
  dagre.layout(g);
  const out: Record<string, XY> = {};
  for (const id of Object.keys(graph.nodes)) {
    const n = g.node(id);
    out[id] = { x: Math.round(n.x - n.width / 2), y: Math.round(n.y - n.height / 2) };
  }
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
