/**
 * The queue view: items grouped by batch with status, a progress bar on running items, and
 * cancel/retry. The list is re-read when an item changes status; progress arrives as events.
 */
import { useCallback, useEffect, useState } from "react";
import type { Dispatcher } from "../../shared/messages";
import { canCancel, canRetry, elapsed, emptyCounts, groupByBatch, type QueueRow, type Status } from "./groups";

export type Methods = {
  items: [{ limit?: number }, { items: QueueRow[]; counts: Record<Status, number>; paused: boolean }];
  cancel: [{ item_ids?: number[]; batch_id?: string | null }, { canceled: number[] }];
  retry: [{ item_ids: number[] }, { item_ids: number[] }];
  prune: [Record<string, never>, { removed: number }];
};

export interface Progress {
  item_id: number;
  fraction: number | null;
  step?: number | null;
  total?: number | null;
  message: string;
}

export type Events = {
  changed: { kind: string; item_id?: number; status?: string };
  progress: Progress;
};

const LABEL: Record<Status, string> = {
  pending: "pending",
  in_progress: "running",
  completed: "done",
  failed: "failed",
  canceled: "canceled",
};

export function App({ rpc }: { rpc: Dispatcher<Methods, Events> }) {
  const [rows, setRows] = useState<QueueRow[]>([]);
  const [counts, setCounts] = useState<Record<Status, number>>(emptyCounts());
  const [progress, setProgress] = useState<Record<number, Progress>>({});
  const [error, setError] = useState<string | null>(null);
  const [, setNow] = useState(0);

  const load = useCallback(() => {
    rpc.call("items", {}).then(
      (r) => {
        setRows(r.items);
        setCounts(r.counts);
      },
      (e) => setError((e as Error).message),
    );
  }, [rpc]);

  useEffect(() => {
    load();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(load, 80);
    };
    const offs = [
      rpc.on("changed", later),
      rpc.on("progress", (p) =>
        setProgress((old) => ({
          ...old,
          [p.item_id]: { ...p, fraction: p.fraction ?? old[p.item_id]?.fraction ?? null },
        })),
      ),
    ];
    const clock = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      clearTimeout(timer);
      clearInterval(clock);
      offs.forEach((off) => off());
    };
  }, [rpc, load]);

  const act = useCallback(
    async (p: Promise<unknown>) => {
      try {
        await p;
        setError(null);
      } catch (e) {
        setError((e as Error).message);
      }
      load();
    },
    [load],
  );

  const groups = groupByBatch(rows);
  return (
    <div className="inb-queue-root">
      <div className="inb-qbar">
        <strong>Queue</strong>
        {(Object.keys(LABEL) as Status[]).map((s) => (
          <span key={s} className={`inb-qcount inb-q-${s}`} data-status={s}>
            {LABEL[s]} {counts[s]}
          </span>
        ))}
        <span className="inb-qspacer" />
        <button
          disabled={counts.pending + counts.in_progress === 0}
          onClick={() => act(rpc.call("cancel", { item_ids: rows.filter((r) => canCancel(r.status)).map((r) => r.item_id) }))}
        >
          Cancel all
        </button>
        <button onClick={() => act(rpc.call("prune", {}))}>Clear finished</button>
      </div>
      {error && <div className="inb-qerror">{error}</div>}
      <div className="inb-qlist">
        {groups.length === 0 && <div className="inb-qempty">The queue is empty.</div>}
        {groups.map((g) => (
          <div key={g.batch_id} className="inb-batch" data-batch={g.batch_id}>
            <div className="inb-batch-head">
              <span className="inb-batch-id">batch {g.batch_id.slice(0, 8)}</span>
              <span className="inb-batch-sum">
                {g.items.length} item{g.items.length === 1 ? "" : "s"} · {g.counts.completed} done
                {g.counts.failed ? ` · ${g.counts.failed} failed` : ""}
              </span>
              {g.active && g.items.length > 1 && (
                <button onClick={() => act(rpc.call("cancel", { batch_id: g.batch_id }))}>Cancel batch</button>
              )}
            </div>
            {g.items.map((it) => {
              const p = progress[it.item_id];
              const secs = elapsed(it);
              return (
                <div key={it.item_id} className={`inb-item inb-item-${it.status}`} data-item={it.item_id} data-status={it.status}>
                  <span className="inb-item-id">#{it.item_id}</span>
                  <span className={`inb-status inb-q-${it.status}`}>{LABEL[it.status]}</span>
                  <span className="inb-item-label" title={it.label}>
                    {it.label}
                  </span>
                  {it.status === "in_progress" && (
                    <span className="inb-item-progress">
                      <span className="inb-bar">
                        <span style={{ width: `${Math.round((p?.fraction ?? 0) * 100)}%` }} />
                      </span>
                      <span className="inb-item-msg">
                        {p?.step != null && p.total ? `step ${p.step}/${p.total}` : p?.message ?? ""}
                      </span>
                    </span>
                  )}
                  {secs !== null && <span className="inb-item-time">{secs.toFixed(1)} s</span>}
                  {canCancel(it.status) && (
                    <button className="inb-cancel" onClick={() => act(rpc.call("cancel", { item_ids: [it.item_id] }))}>
                      Cancel
                    </button>
                  )}
                  {canRetry(it.status) && (
                    <button className="inb-retry" onClick={() => act(rpc.call("retry", { item_ids: [it.item_id] }))}>
                      Retry
                    </button>
                  )}
                  {it.error_message && (
                    <div className="inb-item-error">
                      {it.error_type}: {it.error_message}
                    </div>
                  )}
                </div>
              );
            })}
          </div>
        ))}
      </div>
    </div>
  );
}
