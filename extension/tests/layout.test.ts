import { expect, it } from "vitest";
import { freeSpot, layeredLayout } from "../src/widgets/graph_editor/layout";
import type { GraphJSON } from "../src/widgets/graph_editor/protocol";

function chain(): GraphJSON {
  const nodes: GraphJSON["nodes"] = {};
  for (const id of ["a", "b", "c", "d", "e"]) nodes[id] = { id, type: "add" };
  const e = (s: string, d: string) => ({ source: { node_id: s, field: "value" }, destination: { node_id: d, field: "a" } });
  return { nodes, edges: [e("a", "b"), e("b", "c"), e("a", "d"), e("d", "c"), e("c", "e")] };
}

it("places every edge left to right without overlapping nodes", () => {
  const g = chain();
  const size = { width: 240, height: 160 };
  const pos = layeredLayout(g, () => size);
  expect(Object.keys(pos).sort()).toEqual(["a", "b", "c", "d", "e"]);
  for (const e of g.edges) expect(pos[e.destination.node_id].x).toBeGreaterThan(pos[e.source.node_id].x + size.width);
  const ids = Object.keys(pos);
  for (const [i, p] of ids.entries())
    for (const q of ids.slice(i + 1)) {
      const a = pos[p];
      const b = pos[q];
      const apart = Math.abs(a.x - b.x) >= size.width || Math.abs(a.y - b.y) >= size.height;
      expect(apart, `${p} and ${q} overlap`).toBe(true);
    }
});

it("lays out nodes without edges and ignores edges to missing nodes", () => {
  const g: GraphJSON = {
    nodes: { x: { id: "x", type: "integer" }, y: { id: "y", type: "integer" } },
    edges: [{ source: { node_id: "x", field: "value" }, destination: { node_id: "gone", field: "a" } }],
  };
  const pos = layeredLayout(g);
  expect(pos.x).not.toEqual(pos.y);
});

it("finds a free spot for a new node next to the ones in the way", () => {
  const size = { width: 200, height: 100 };
  expect(freeSpot({ x: 0, y: 0 }, size, [])).toEqual({ x: 0, y: 0 });
  const taken = [
    { x: 0, y: 0, width: 200, height: 100 },
    { x: 150, y: 0, width: 200, height: 100 },
  ];
  const p = freeSpot({ x: 50, y: 20 }, size, taken);
  for (const r of taken) {
    const apart = p.x >= r.x + r.width || p.x + size.width <= r.x || p.y >= r.y + r.height || p.y + size.height <= r.y;
    expect(apart).toBe(true);
  }
  expect(Math.hypot(p.x - 50, p.y - 20)).toBeLessThan(400);
});
