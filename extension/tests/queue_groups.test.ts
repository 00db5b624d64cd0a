import { expect, it } from "vitest";
import { canCancel, canRetry, elapsed, groupByBatch, type QueueRow } from "../src/widgets/queue_view/groups";

const row = (item_id: number, batch_id: string, status: QueueRow["status"], extra: Partial<QueueRow> = {}): QueueRow => ({
  item_id,
  batch_id,
  status,
  priority: 0,
  label: "",
  nodes: 1,
  error_type: null,
  error_message: null,
  created_at: "2025-01-01T00:00:00Z",
  started_at: null,
  completed_at: null,
  retried_from: null,
  ...extra,
});

it("groups by batch, newest batch first, items in id order, with counts", () => {
  const groups = groupByBatch([
    row(3, "b1", "pending"),
    row(1, "b1", "completed"),
    row(2, "b2", "failed"),
    row(4, "b3", "completed"),
  ]);
  expect(groups.map((g) => g.batch_id)).toEqual(["b3", "b1", "b2"]);
  expect(groups[1].items.map((i) => i.item_id)).toEqual([1, 3]);
  expect(groups[1].counts).toMatchObject({ pending: 1, completed: 1, failed: 0 });
  expect(groups.map((g) => g.active)).toEqual([false, true, false]);
  expect(groupByBatch([])).toEqual([]);
});

it("knows which items can be canceled or retried", () => {
  expect(["pending", "in_progress"].every((s) => canCancel(s as QueueRow["status"]))).toBe(true);
  expect(canCancel("completed") || canCancel("failed")).toBe(false);
  expect(canRetry("failed") && canRetry("canceled")).toBe(true);
  expect(canRetry("completed") || canRetry("pending")).toBe(false);
});

it("measures run time, running or finished", () => {
  const done = row(1, "b", "completed", { started_at: "2025-01-01T00:00:00Z", completed_at: "2025-01-01T00:00:02.5Z" });
  expect(elapsed(done)).toBe(2.5);
  const running = row(2, "b", "in_progress", { started_at: "2025-01-01T00:00:00Z" });
  expect(elapsed(running, Date.parse("2025-01-01T00:00:04Z"))).toBe(4);
  expect(elapsed(row(3, "b", "pending"))).toBeNull();
});
