import { describe, expect, it } from "vitest";
import { contentBounds, liveOps, maskExtent, moveLayer, setKind, type LayerDoc, type MaskOp } from "../src/widgets/canvas/doc";
import { History } from "../src/widgets/canvas/history";
import { generationMode, hasPaint, snap8 } from "../src/widgets/canvas/mode";

/** RGBA pixel data with the given alphas (colour channels arbitrary). */
function rgba(alphas: number[]): Uint8ClampedArray {
  const d = new Uint8ClampedArray(alphas.length * 4);
  alphas.forEach((a, i) => {
    d[4 * i] = 200;
    d[4 * i + 3] = a;
  });
  return d;
}

describe("generationMode (InvokeAI's rule, as invoke_nb.widgets.canvas.generation_mode)", () => {
  const empty = rgba([0, 0, 0, 0]);
  const opaque = rgba([255, 255, 255, 255]);
  const half = rgba([255, 255, 0, 0]);
  const faint = rgba([255, 128, 255, 255]);
  const noMask = rgba([0, 0, 0, 0]);
  const mask = rgba([0, 0, 0, 30]);
  it("fully transparent -> txt2img, whatever the mask", () => {
    expect(generationMode(empty, null)).toBe("txt2img");
    expect(generationMode(empty, mask)).toBe("txt2img");
  });
  it("partly transparent -> outpaint", () => {
    expect(generationMode(half, noMask)).toBe("outpaint");
    expect(generationMode(faint, mask)).toBe("outpaint");
  });
  it("opaque with an empty mask -> img2img", () => {
    expect(generationMode(opaque, noMask)).toBe("img2img");
    expect(generationMode(opaque, null)).toBe("img2img");
  });
  it("opaque with a painted mask -> inpaint", () => {
    expect(generationMode(opaque, mask)).toBe("inpaint");
  });
  it("reads only alpha", () => {
    expect(hasPaint(rgba([0, 0]))).toBe(false);
    const colourOnly = new Uint8ClampedArray([255, 255, 255, 0]);
    expect(hasPaint(colourOnly)).toBe(false);
    expect(hasPaint(rgba([0, 1]))).toBe(true);
  });
  it("box sides snap to multiples of 8, at least 8", () => {
    expect([snap8(0), snap8(3), snap8(12), snap8(13), snap8(64), snap8(515)]).toEqual([8, 8, 16, 16, 64, 512]);
  });
});

describe("History", () => {
  it("undoes and redoes snapshots; a new change drops the redo branch", () => {
    const h = new History<number>(0, 3);
    h.push(1);
    h.push(2);
    expect(h.undo()).toBe(1);
    expect(h.undo()).toBe(0);
    expect(h.canUndo).toBe(false);
    expect(h.undo()).toBe(0);
    expect(h.redo()).toBe(1);
    h.push(5);
    expect(h.canRedo).toBe(false);
    expect(h.redo()).toBe(5);
    expect(h.undo()).toBe(1);
  });
  it("keeps at most `limit` past states and ignores a push of the same state", () => {
    const h = new History<string>("a", 2);
    for (const s of ["b", "c", "d"]) h.push(s);
    h.push("d");
    expect([h.undo(), h.undo(), h.undo()]).toEqual(["c", "b", "b"]);
  });
});

describe("document helpers", () => {
  const stroke = (pts: number[], size = 10, erase = false): MaskOp => ({ kind: "stroke", points: pts, size, erase });
  it("a clear hides every earlier mask operation", () => {
    const ops: MaskOp[] = [stroke([0, 0]), { kind: "clear" }, stroke([50, 50])];
    expect(liveOps(ops)).toEqual([stroke([50, 50])]);
    expect(maskExtent([stroke([0, 0]), { kind: "clear" }])).toBeNull();
  });
  it("the mask extent covers strokes with their width and inverted boxes", () => {
    expect(maskExtent([stroke([10, 20, 30, 20], 4)])).toEqual({ x: 7, y: 17, width: 26, height: 6 });
    const r = maskExtent([stroke([10, 10], 2), { kind: "invert", rect: { x: -8, y: 0, width: 16, height: 8 } }]);
    expect(r).toEqual({ x: -8, y: 0, width: 20, height: 12 });
  });
  const layer = (id: string, x: number, y: number, w: number, s = 1): LayerDoc => ({
    id,
    name: id,
    width: w,
    height: w,
    x,
    y,
    scale_x: s,
    scale_y: s,
    visible: true,
    opacity: 1,
  });
  it("content bounds include the box and scaled layers", () => {
    const doc = { layers: [layer("a", -10, 0, 10, 2)], mask: [], bbox: { x: 0, y: 0, width: 64, height: 64 } };
    expect(contentBounds(doc)).toEqual({ x: -10, y: 0, width: 74, height: 64 });
  });
  it("moves a layer up and down the stack, clamped", () => {
    const ls = ["a", "b", "c"].map((id) => layer(id, 0, 0, 1));
    expect(moveLayer(ls, "a", 1).map((l) => l.id)).toEqual(["b", "a", "c"]);
    expect(moveLayer(ls, "c", 5).map((l) => l.id)).toEqual(["a", "b", "c"]);
    expect(moveLayer(ls, "c", -2).map((l) => l.id)).toEqual(["c", "a", "b"]);
  });
  it("makes a layer a control layer keeping its settings, and back", () => {
    const ls = ["a", "b"].map((id) => layer(id, 0, 0, 1));
    const c = { model: "cn", weight: 0.5, begin: 0, end: 1, mode: "balanced" as const };
    const on = setKind(ls, "b", "control", c);
    expect(on.map((l) => l.kind ?? "raster")).toEqual(["raster", "control"]);
    expect(on[1].control).toEqual(c);
    // settings already chosen survive a second switch; raster drops them
    expect(setKind(on, "b", "control", { ...c, weight: 1 })[1].control?.weight).toBe(0.5);
    expect(setKind(on, "b", "raster", c)[1]).toMatchObject({ kind: "raster", control: null });
  });
});
