import { describe, expect, it } from "vitest";
import {
  cellPosition,
  contentHeight,
  geometry,
  moveCursor,
  PageCache,
  pagesFor,
  scrollToShow,
  visibleRange,
} from "../src/widgets/gallery/grid";

describe("geometry", () => {
  it("fits as many cells as the width allows and stretches them", () => {
    const g = geometry(800, 128, 6);
    expect(g.columns).toBe(6); // 6*128 + 5*6 = 798 <= 800 < 7*128 + 6*6
    expect(g.cell).toBe(128);
    expect(geometry(900, 128, 6).cell).toBe(Math.floor((900 - 5 * 6) / 6)); // 145: stretched
    expect(g.rowHeight).toBe(g.cell + 6);
  });
  it("always has one column, even narrower than a cell", () => {
    expect(geometry(50, 128).columns).toBe(1);
    expect(geometry(0, 128).cell).toBeGreaterThan(0);
  });
});

describe("virtualization over 10,000 images", () => {
  const g = geometry(1000, 120, 8); // 7 columns
  const total = 10_000;
  it("content height covers every row without a trailing gap", () => {
    expect(g.columns).toBe(7);
    expect(contentHeight(total, g)).toBe(Math.ceil(total / 7) * g.rowHeight - 8);
    expect(contentHeight(0, g)).toBe(0);
  });
  it("renders only the rows under the viewport plus overscan", () => {
    const r = visibleRange(0, 600, g, total, 1);
    expect(r.start).toBe(0);
    const rows = Math.ceil(600 / g.rowHeight) + 1;
    expect(r.end).toBe(rows * 7);
    expect(r.end - r.start).toBeLessThan(100);
  });
  it("a scrolled viewport starts one row above the first visible row", () => {
    const top = 500 * g.rowHeight + 10;
    const r = visibleRange(top, 600, g, total, 1);
    expect(r.start).toBe(499 * 7);
    expect(cellPosition(r.start, g).top).toBeLessThanOrEqual(top);
  });
  it("clamps at the end and is empty for no items", () => {
    const r = visibleRange(contentHeight(total, g), 600, g, total, 2);
    expect(r.end).toBe(total);
    expect(r.start).toBeLessThan(total);
    expect(visibleRange(0, 600, g, 0)).toEqual({ start: 0, end: 0 });
  });
  it("every visible item lies in one of the requested pages", () => {
    for (const top of [0, 12345, 200_000, contentHeight(total, g) - 600]) {
      const r = visibleRange(top, 600, g, total, 1);
      const pages = pagesFor(r, 100);
      for (let i = r.start; i < r.end; i++) expect(pages).toContain(Math.floor(i / 100));
      expect(pages.length).toBeLessThanOrEqual(2);
    }
  });
});

describe("pagesFor and scrollToShow", () => {
  it("lists each page of a range once", () => {
    expect(pagesFor({ start: 95, end: 205 }, 100)).toEqual([0, 1, 2]);
    expect(pagesFor({ start: 100, end: 200 }, 100)).toEqual([1]);
    expect(pagesFor({ start: 5, end: 5 }, 100)).toEqual([]);
  });
  it("scrolls just enough to show an item", () => {
    const g = geometry(500, 100, 0); // 5 columns of 100
    expect(scrollToShow(0, 300, 400, g)).toBe(0);
    expect(scrollToShow(25, 0, 400, g)).toBe(5 * 100 + 100 - 400);
    expect(scrollToShow(10, 150, 400, g)).toBe(150);
  });
});

describe("PageCache", () => {
  it("serves items by global index and evicts the least recently used page", () => {
    const evicted: number[][] = [];
    const c = new PageCache<number>(10, 2, (items) => evicted.push(items));
    c.put(0, [...Array(10).keys()]);
    c.put(1, [...Array(10).keys()].map((i) => i + 10));
    expect(c.item(13)).toBe(13);
    c.item(5); // page 0 is now the most recent
    c.put(2, [20]);
    expect(c.has(1)).toBe(false);
    expect(evicted).toHaveLength(1);
    expect(evicted[0][0]).toBe(10);
    expect(c.item(20)).toBe(20);
    expect(c.missing([0, 1, 2])).toEqual([1]);
  });
  it("never evicts pinned (visible) pages and frees everything on clear", () => {
    const evicted: number[][] = [];
    const c = new PageCache<number>(1, 1, (items) => evicted.push(items));
    c.put(0, [0]);
    c.put(1, [1], [0, 1]);
    expect(c.size).toBe(2);
    c.put(2, [2], [2]);
    expect(c.has(2)).toBe(true);
    c.clear();
    expect(c.size).toBe(0);
    expect(evicted.flat().sort()).toEqual([0, 1, 2]);
  });
  it("replacing a page frees the old one", () => {
    const evicted: string[][] = [];
    const c = new PageCache<string>(2, 5, (items) => evicted.push(items));
    c.put(0, ["a", "b"]);
    c.put(0, ["c", "d"]);
    expect(evicted).toEqual([["a", "b"]]);
    expect(c.item(1)).toBe("d");
  });
});

describe("keyboard moves (moveCursor)", () => {
  // 10 items in 4 columns: rows 0-3, 4-7, 8-9
  it("moves by one with left/right and by a row with up/down, staying inside", () => {
    expect(moveCursor(5, "ArrowRight", 4, 10)).toBe(6);
    expect(moveCursor(5, "ArrowLeft", 4, 10)).toBe(4);
    expect(moveCursor(5, "ArrowDown", 4, 10)).toBe(9);
    expect(moveCursor(5, "ArrowUp", 4, 10)).toBe(1);
    expect(moveCursor(0, "ArrowLeft", 4, 10)).toBe(0);
    expect(moveCursor(9, "ArrowRight", 4, 10)).toBe(9);
    expect(moveCursor(7, "ArrowDown", 4, 10)).toBe(7); // no item below: stays
    expect(moveCursor(2, "ArrowUp", 4, 10)).toBe(2);
  });
  it("pages by screenfuls and jumps to the ends", () => {
    expect(moveCursor(1, "PageDown", 4, 100, 3)).toBe(13);
    expect(moveCursor(13, "PageUp", 4, 100, 3)).toBe(1);
    expect(moveCursor(98, "PageDown", 4, 100, 3)).toBe(99);
    expect(moveCursor(50, "Home", 4, 100)).toBe(0);
    expect(moveCursor(null, "End", 4, 100)).toBe(99);
  });
  it("starts at the first item, ignores other keys and empty grids", () => {
    expect(moveCursor(null, "ArrowDown", 4, 10)).toBe(0);
    expect(moveCursor(3, "a", 4, 10)).toBeNull();
    expect(moveCursor(null, "ArrowDown", 4, 0)).toBeNull();
  });
});
