import { expect, it } from "vitest";
import { fitViewport, freeSpot, layeredLayout, MIN_FIT_ZOOM } from "../src/widgets/graph_editor/layout";
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

it("lays the standard txt2img graph out wider than tall, fitting at a readable zoom", () => {
  // the graph studio.txt2img builds, with the node sizes the editor measures (core_metadata compact)
  const sizes: Record<string, [number, number]> = {
    model_loader: [281, 148], positive_prompt: [239, 140], negative_prompt: [239, 140], seed: [222, 104],
    pos_cond: [222, 168], neg_cond: [222, 168], noise: [222, 301], denoise_latents: [284, 850],
    core_metadata: [224, 190], l2i: [273, 364],
  };
  const nodes: GraphJSON["nodes"] = {};
  for (const id of Object.keys(sizes)) nodes[id] = { id, type: id };
  const e = (s: string, d: string) => ({ source: { node_id: s, field: "x" }, destination: { node_id: d, field: "y" } });
  const g: GraphJSON = {
    nodes,
    edges: [
      e("positive_prompt", "pos_cond"), e("model_loader", "pos_cond"), e("negative_prompt", "neg_cond"),
      e("model_loader", "neg_cond"), e("seed", "noise"), e("pos_cond", "denoise_latents"),
      e("neg_cond", "denoise_latents"), e("noise", "denoise_latents"), e("model_loader", "denoise_latents"),
      e("positive_prompt", "core_metadata"), e("negative_prompt", "core_metadata"), e("seed", "core_metadata"),
      e("denoise_latents", "l2i"), e("model_loader", "l2i"), e("core_metadata", "l2i"),
    ],
  };
  const pos = layeredLayout(g, (id) => ({ width: sizes[id][0], height: sizes[id][1] }));
  const xs = Object.keys(pos).flatMap((id) => [pos[id].x, pos[id].x + sizes[id][0]]);
  const ys = Object.keys(pos).flatMap((id) => [pos[id].y, pos[id].y + sizes[id][1]]);
  const bounds = { x: Math.min(...xs), y: Math.min(...ys), width: Math.max(...xs) - Math.min(...xs), height: Math.max(...ys) - Math.min(...ys) };
  expect(bounds.width).toBeGreaterThan(bounds.height);
  expect(pos.l2i.x).toBeGreaterThan(pos.denoise_latents.x);
  expect(pos.denoise_latents.x).toBeGreaterThan(pos.noise.x);
  // the pane of an editor in a notebook cell (about 950 x 600 px) shows it whole at >= 0.5
  expect(fitViewport(bounds, { width: 950, height: 600 }).zoom).toBeGreaterThanOrEqual(MIN_FIT_ZOOM);
});

it("fits a small graph centred, up to 1:1, and starts a large one at its top-left corner", () => {
  const small = fitViewport({ x: 0, y: 0, width: 200, height: 100 }, { width: 1000, height: 600 });
  expect(small).toEqual({ x: 400, y: 250, zoom: 1 });
  const big = fitViewport({ x: 100, y: 50, width: 6000, height: 4000 }, { width: 1000, height: 600 }, 24);
  expect(big.zoom).toBe(MIN_FIT_ZOOM);
  expect(big.x).toBe(24 - 100 * MIN_FIT_ZOOM);
  expect(big.y).toBe(24 - 50 * MIN_FIT_ZOOM);
  const mid = fitViewport({ x: 0, y: 0, width: 1904, height: 552 }, { width: 1000, height: 600 }, 24);
  expect(mid.zoom).toBeCloseTo(0.5, 5);
});
