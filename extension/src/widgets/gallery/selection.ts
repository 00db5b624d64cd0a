/**
 * Multi-selection with the usual modifiers: click selects one, ctrl/cmd-click toggles one,
 * shift-click selects the range from the anchor (ctrl+shift adds the range). Pure: the
 * component resolves a range's names (from loaded pages or the kernel) and merges them.
 */

export interface Selection {
  names: string[];
  /** index of the last plain or ctrl click: where a shift range starts */
  anchor: number | null;
}

export interface Mods {
  shift?: boolean;
  ctrl?: boolean;
}

export type ClickResult =
  | { kind: "set"; selection: Selection }
  | { kind: "range"; start: number; end: number; keep: string[]; anchor: number };

export const EMPTY: Selection = { names: [], anchor: null };

export function click(sel: Selection, index: number, name: string, mods: Mods = {}): ClickResult {
  if (mods.shift && sel.anchor !== null) {
    const start = Math.min(sel.anchor, index);
    const end = Math.max(sel.anchor, index) + 1; // exclusive
    return { kind: "range", start, end, keep: mods.ctrl ? sel.names : [], anchor: sel.anchor };
  }
  if (mods.ctrl) {
    const has = sel.names.includes(name);
    const names = has ? sel.names.filter((n) => n !== name) : [...sel.names, name];
    return { kind: "set", selection: { names, anchor: index } };
  }
  return { kind: "set", selection: { names: [name], anchor: index } };
}

/** The selection after a range click, once the range's names are known. */
export function applyRange(keep: string[], rangeNames: string[], anchor: number): Selection {
  const seen = new Set(keep);
  const names = [...keep];
  for (const n of rangeNames) {
    if (!seen.has(n)) {
      seen.add(n);
      names.push(n);
    }
  }
  return { names, anchor };
}

/** Names of indices [start, end) when every one is known, else null (ask the kernel). */
export function namesFromCache(
  start: number,
  end: number,
  lookup: (index: number) => string | undefined,
): string[] | null {
  const out: string[] = [];
  for (let i = start; i < end; i++) {
    const n = lookup(i);
    if (n === undefined) return null;
    out.push(n);
  }
  return out;
}
