/** Queue items grouped by batch (pure; tested in tests/queue_groups.test.ts). */

export type Status = "pending" | "in_progress" | "completed" | "failed" | "canceled";

export interface QueueRow {
  item_id: number;
  batch_id: string;
  status: Status;
  priority: number;
  label: string;
  nodes: number;
  error_type: string | null;
  error_message: string | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  retried_from: number | null;
}

export interface BatchGroup {
  batch_id: string;
  items: QueueRow[];
  counts: Record<Status, number>;
  /** the batch still has work to do (pending or running items) */
  active: boolean;
}

const STATUSES: Status[] = ["pending", "in_progress", "completed", "failed", "canceled"];

export function emptyCounts(): Record<Status, number> {
  return Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
}

/** Batches newest first (by their largest item id); items inside in id order. */
export function groupByBatch(rows: QueueRow[]): BatchGroup[] {
  const byBatch = new Map<string, QueueRow[]>();
  for (const r of rows) {
    const list = byBatch.get(r.batch_id);
    if (list) list.push(r);
    else byBatch.set(r.batch_id, [r]);
  }
  const groups: BatchGroup[] = [];
  for (const [batch_id, items] of byBatch) {
    items.sort((a, b) => a.item_id - b.item_id);
    const counts = emptyCounts();
    for (const it of items) counts[it.status] += 1;
    groups.push({ batch_id, items, counts, active: counts.pending + counts.in_progress > 0 });
  }
  const newest = (g: BatchGroup) => g.items[g.items.length - 1].item_id;
  return groups.sort((a, b) => newest(b) - newest(a));
}

export function canCancel(s: Status): boolean {
  return s === "pending" || s === "in_progress";
}

export function canRetry(s: Status): boolean {
  return s === "failed" || s === "canceled";
}

/** Seconds an item ran (or has been running, given `now`), or null if it never started. */
export function elapsed(row: QueueRow, now: number = Date.now()): number | null {
  if (!row.started_at) return null;
  const end = row.completed_at ? Date.parse(row.completed_at) : now;
  return Math.max(0, (end - Date.parse(row.started_at)) / 1000);
}
