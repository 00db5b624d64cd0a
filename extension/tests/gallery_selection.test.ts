import { describe, expect, it } from "vitest";
import { applyRange, click, EMPTY, namesFromCache } from "../src/widgets/gallery/selection";

const names = ["a", "b", "c", "d", "e", "f"];

describe("click", () => {
  it("plain click selects one and sets the anchor", () => {
    const r = click({ names: ["x", "y"], anchor: 4 }, 2, "c");
    expect(r).toEqual({ kind: "set", selection: { names: ["c"], anchor: 2 } });
  });
  it("ctrl-click toggles one, keeping the rest", () => {
    let r = click({ names: ["a"], anchor: 0 }, 2, "c", { ctrl: true });
    expect(r).toEqual({ kind: "set", selection: { names: ["a", "c"], anchor: 2 } });
    r = click({ names: ["a", "c"], anchor: 2 }, 0, "a", { ctrl: true });
    expect(r).toEqual({ kind: "set", selection: { names: ["c"], anchor: 0 } });
  });
  it("shift-click asks for the range between anchor and click, either direction", () => {
    expect(click({ names: ["b"], anchor: 1 }, 4, "e", { shift: true })).toEqual({
      kind: "range",
      start: 1,
      end: 5,
      keep: [],
      anchor: 1,
    });
    const up = click({ names: ["e"], anchor: 4 }, 1, "b", { shift: true });
    expect(up).toMatchObject({ start: 1, end: 5, anchor: 4 });
  });
  it("ctrl+shift adds the range to the selection; shift without anchor acts as a click", () => {
    const r = click({ names: ["a"], anchor: 3 }, 5, "f", { shift: true, ctrl: true });
    expect(r).toMatchObject({ kind: "range", start: 3, end: 6, keep: ["a"] });
    expect(click(EMPTY, 3, "d", { shift: true })).toEqual({
      kind: "set",
      selection: { names: ["d"], anchor: 3 },
    });
  });
});

describe("ranges", () => {
  it("merges without duplicates, keeping order", () => {
    expect(applyRange(["a", "c"], ["b", "c", "d"], 1)).toEqual({ names: ["a", "c", "b", "d"], anchor: 1 });
  });
  it("resolves names from loaded pages, or says it cannot", () => {
    expect(namesFromCache(1, 4, (i) => names[i])).toEqual(["b", "c", "d"]);
    expect(namesFromCache(4, 8, (i) => names[i])).toBeNull();
  });
});
