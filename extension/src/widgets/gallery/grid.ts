/**
 * Virtualized grid math and the page cache of the gallery. Pure functions (unit-tested in
 * tests/gallery_grid.test.ts): the component renders only the cells under the viewport and
 * asks the kernel for the pages that hold them.
 */

export interface Geometry {
  columns: number;
  cell: number;
  gap: number;
  rowHeight: number;
}

/** Columns that fit `width` with cells at least `minCell` wide; cells stretch to fill. */
export function geometry(width: number, minCell: number, gap = 6): Geometry {
  const w = Math.max(0, width);
  const columns = Math.max(1, Math.floor((w + gap) / (minCell + gap)));
  const cell = Math.max(1, Math.floor((w - gap * (columns - 1)) / columns));
  return { columns, cell, gap, rowHeight: cell + gap };
}

/** Height of the scrolled content for `total` items. */
export function contentHeight(total: number, g: Geometry): number {
  const rows = Math.ceil(Math.max(0, total) / g.columns);
  return rows === 0 ? 0 : rows * g.rowHeight - g.gap;
}

/** Top-left corner of item `index`. */
export function cellPosition(index: number, g: Geometry): { left: number; top: number } {
  const row = Math.floor(index / g.columns);
  const col = index % g.columns;
  return { left: col * (g.cell + g.gap), top: row * g.rowHeight };
}

export interface Range {
  /** first item index shown (inclusive) */
  start: number;
  /** one past the last item index shown */
  end: number;
}

/** Items under a viewport, plus `overscan` rows above and below; empty when total is 0. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  g: Geometry,
  total: number,
  overscan = 1,
): Range {
  if (total <= 0 || viewportHeight <= 0) return { start: 0, end: 0 };
  const firstRow = Math.max(0, Math.floor(Math.max(0, scrollTop) / g.rowHeight) - overscan);
  const lastRow = Math.floor((Math.max(0, scrollTop) + viewportHeight - 1) / g.rowHeight) + overscan;
  const start = Math.min(total, firstRow * g.columns);
  const end = Math.min(total, (lastRow + 1) * g.columns);
  return { start, end };
}

/** Page numbers (of `pageSize` items) that hold the items of a range. */
export function pagesFor(range: Range, pageSize: number): number[] {
  if (range.end <= range.start) return [];
  const first = Math.floor(range.start / pageSize);
  const last = Math.floor((range.end - 1) / pageSize);
  const out: number[] = [];
  for (let p = first; p <= last; p++) out.push(p);
  return out;
}

/** The scrollTop that brings item `index` into view (unchanged if it is already visible). */
export function scrollToShow(index: number, scrollTop: number, viewportHeight: number, g: Geometry): number {
  const top = cellPosition(index, g).top;
  if (top < scrollTop) return top;
  if (top + g.cell > scrollTop + viewportHeight) return top + g.cell - viewportHeight;
  return scrollTop;
}

/**
 * Pages of items by page number, least recently used evicted beyond `maxPages` (never the
 * pages passed as `keep`). `onEvict` frees what a page holds (if anything needs freeing).
 */
export class PageCache<T> {
  private pages = new Map<number, T[]>();

  constructor(
    readonly pageSize: number,
    readonly maxPages = 20,
    private readonly onEvict: (items: T[]) => void = () => undefined,
  ) {}

  get size(): number {
    return this.pages.size;
  }

  has(page: number): boolean {
    return this.pages.has(page);
  }

  /** The item at a global index, if its page is loaded (marks the page recently used). */
  item(index: number): T | undefined {
    const page = Math.floor(index / this.pageSize);
    const items = this.pages.get(page);
    if (!items) return undefined;
    this.pages.delete(page);
    this.pages.set(page, items);
    return items[index - page * this.pageSize];
  }

  put(page: number, items: T[], keep: Iterable<number> = []): void {
    const old = this.pages.get(page);
    if (old && old !== items) this.onEvict(old);
    this.pages.delete(page);
    this.pages.set(page, items);
    const pinned = new Set(keep);
    pinned.add(page);
    for (const p of this.pages.keys()) {
      if (this.pages.size <= this.maxPages) break;
      if (pinned.has(p)) continue;
      this.onEvict(this.pages.get(p)!);
      this.pages.delete(p);
    }
  }

  /** Pages of `wanted` not loaded yet. */
  missing(wanted: number[]): number[] {
    return wanted.filter((p) => !this.pages.has(p));
  }

  clear(): void {
    for (const items of this.pages.values()) this.onEvict(items);
    this.pages.clear();
  }
}

/** Below this width (px) the view is narrow: boards become a menu, tiles shrink. */
export const NARROW = 560;
/** Smallest tile in a narrow view (three columns in a 250 px sidebar). */
export const NARROW_CELL = 72;

/**
 * Where a key moves the keyboard position in a grid of `total` items: arrows by one cell or
 * one row, PageUp/PageDown by `pageRows` rows, Home/End to the ends. `null` for other keys
 * (and for an empty grid); from no position, any move key starts at the first item.
 */
export function moveCursor(index: number | null, key: string, columns: number, total: number, pageRows = 1): number | null {
  if (total <= 0) return null;
  const clamp = (i: number) => Math.max(0, Math.min(total - 1, i));
  const steps: Record<string, number> = {
    ArrowLeft: -1,
    ArrowRight: 1,
    ArrowUp: -columns,
    ArrowDown: columns,
    PageUp: -columns * pageRows,
    PageDown: columns * pageRows,
  };
  if (key === "Home") return 0;
  if (key === "End") return total - 1;
  if (!(key in steps)) return null;
  if (index === null) return 0;
  const to = index + steps[key];
  // up/down past an end stays in place rather than jumping to another column
  if ((key === "ArrowUp" || key === "ArrowDown") && (to < 0 || to >= total)) return clamp(index);
  return clamp(to);
}
