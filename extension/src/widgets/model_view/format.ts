/** Number formatting for the model view (pure; tested in tests/model_format.test.ts). */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 -> "1.5 KiB"; null/undefined -> "". */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "";
  let v = Math.max(0, n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

/** Download/install progress as a fraction, or null when the total is unknown. */
export function fraction(done: number, total: number | null | undefined): number | null {
  if (!total || total <= 0) return null;
  return Math.min(1, Math.max(0, done / total));
}

/** Cache hit rate as "75%" (or "–" before any lookup). */
export function hitRate(hits: number, misses: number): string {
  const n = hits + misses;
  return n === 0 ? "–" : `${Math.round((100 * hits) / n)}%`;
}
