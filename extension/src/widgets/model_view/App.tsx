/**
 * The model view: installed models (type, base, format, size), an install form with progress
 * per job, removal with confirmation, and the model cache's statistics.
 */
import { useCallback, useEffect, useState } from "react";
import type { Dispatcher } from "../../shared/messages";
import { bytes, fraction, hitRate } from "./format";

export interface ModelRow {
  key: string;
  name: string;
  base: string;
  type: string;
  format: string;
  variant: string | null;
  path: string;
  source: string | null;
  file_size: number;
  description: string | null;
}

export interface Job {
  job_id: number;
  source: string;
  status: "running" | "done" | "error" | "canceled";
  message: string;
  done: number;
  total: number | null;
  record: ModelRow | null;
  error: { type: string; message: string } | null;
}

export interface CacheStats {
  hits: number;
  misses: number;
  loads: number;
  load_seconds: number;
  evictions: number;
  offloads: number;
  entries: number;
  locked: number;
  bytes_ram: number;
  bytes_vram: number;
  ram_budget: number;
  vram_budget: number;
}

export type Methods = {
  list: [Record<string, never>, ModelRow[]];
  install: [{ source: string; name?: string | null }, Job];
  cancel_install: [{ job_id: number }, Job];
  jobs: [Record<string, never>, Job[]];
  remove: [{ key: string }, ModelRow];
  cache: [Record<string, never>, CacheStats];
};

export type Events = {
  install_progress: Job;
  install_done: Job;
  cache_changed: Record<string, never>;
};

export function App({ rpc }: { rpc: Dispatcher<Methods, Events> }) {
  const [models, setModels] = useState<ModelRow[]>([]);
  const [stats, setStats] = useState<CacheStats | null>(null);
  const [jobs, setJobs] = useState<Record<number, Job>>({});
  const [source, setSource] = useState("");
  const [name, setName] = useState("");
  const [confirm, setConfirm] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const fail = useCallback((e: unknown) => setError((e as Error).message), []);
  const load = useCallback(() => {
    rpc.call("list", {}).then(setModels, fail);
    rpc.call("cache", {}).then(setStats, fail);
  }, [rpc, fail]);

  useEffect(() => {
    load();
    rpc.call("jobs", {}).then((js) => setJobs(Object.fromEntries(js.map((j) => [j.job_id, j]))), fail);
    const put = (j: Job) => setJobs((old) => ({ ...old, [j.job_id]: j }));
    const offs = [
      rpc.on("install_progress", put),
      rpc.on("install_done", (j) => {
        put(j);
        if (j.status === "error") setError(`install of ${j.source} failed: ${j.error?.type}: ${j.error?.message}`);
        load();
      }),
      rpc.on("cache_changed", () => rpc.call("cache", {}).then(setStats, fail)),
    ];
    return () => offs.forEach((off) => off());
  }, [rpc, load, fail]);

  const install = async () => {
    if (!source.trim()) return;
    try {
      const j = await rpc.call("install", { source: source.trim(), name: name.trim() || null });
      setJobs((old) => ({ ...old, [j.job_id]: j }));
      setSource("");
      setName("");
      setError(null);
    } catch (e) {
      fail(e);
    }
  };

  const remove = async (key: string) => {
    setConfirm(null);
    try {
      await rpc.call("remove", { key });
      load();
    } catch (e) {
      fail(e);
    }
  };

  return (
    <div className="inb-models-root">
      <div className="inb-mbar">
        <strong>Models</strong>
        <input
          className="inb-msource"
          placeholder="path, URL or org/repo"
          value={source}
          onChange={(e) => setSource(e.target.value)}
          onKeyDown={(e) => e.key === "Enter" && install()}
        />
        <input className="inb-mname" placeholder="name (optional)" value={name} onChange={(e) => setName(e.target.value)} />
        <button className="inb-install" onClick={install} disabled={!source.trim()}>
          Install
        </button>
        <button onClick={load}>Refresh</button>
      </div>
      {error && (
        <div className="inb-merror" onClick={() => setError(null)}>
          {error}
        </div>
      )}
      {Object.values(jobs)
        .filter((j) => j.status === "running" || j.status === "error")
        .map((j) => {
          const f = fraction(j.done, j.total);
          return (
            <div key={j.job_id} className={`inb-job inb-job-${j.status}`} data-job={j.job_id}>
              <span className="inb-job-source">{j.source}</span>
              {j.status === "running" ? (
                <>
                  <span className="inb-bar">
                    <span style={{ width: `${Math.round((f ?? 0) * 100)}%` }} className={f === null ? "inb-indeterminate" : ""} />
                  </span>
                  <span className="inb-job-msg">
                    {j.message} {j.total ? `${bytes(j.done)} / ${bytes(j.total)}` : j.done ? bytes(j.done) : ""}
                  </span>
                  <button onClick={() => rpc.call("cancel_install", { job_id: j.job_id }).catch(fail)}>Cancel</button>
                </>
              ) : (
                <span className="inb-job-msg">{j.message}</span>
              )}
            </div>
          );
        })}
      <table className="inb-mtable">
        <thead>
          <tr>
            <th>Name</th>
            <th>Type</th>
            <th>Base</th>
            <th>Format</th>
            <th>Size</th>
            <th>Source</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {models.length === 0 && (
            <tr>
              <td colSpan={7} className="inb-mempty">
                No models installed.
              </td>
            </tr>
          )}
          {models.map((m) => (
            <tr key={m.key} data-key={m.key} data-name={m.name}>
              <td title={m.description ?? m.key}>{m.name}</td>
              <td>{m.type}</td>
              <td>{m.base}</td>
              <td>{m.format}</td>
              <td className="inb-num">{bytes(m.file_size)}</td>
              <td className="inb-msrc" title={m.path}>
                {m.source ?? m.path}
              </td>
              <td>
                {confirm === m.key ? (
                  <>
                    <button className="inb-danger inb-confirm-remove" onClick={() => remove(m.key)}>
                      Remove
                    </button>
                    <button onClick={() => setConfirm(null)}>Keep</button>
                  </>
                ) : (
                  <button className="inb-remove" onClick={() => setConfirm(m.key)}>
                    Remove…
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {stats && (
        <div className="inb-cache" data-entries={stats.entries}>
          <strong>Model cache</strong>
          <span data-stat="entries">{stats.entries} loaded</span>
          <span data-stat="ram">
            RAM {bytes(stats.bytes_ram)} / {bytes(stats.ram_budget)}
          </span>
          {stats.vram_budget > 0 && (
            <span data-stat="vram">
              VRAM {bytes(stats.bytes_vram)} / {bytes(stats.vram_budget)}
            </span>
          )}
          <span data-stat="hits">
            {stats.hits} hits · {stats.misses} misses ({hitRate(stats.hits, stats.misses)})
          </span>
          <span data-stat="loads">
            {stats.loads} loads in {stats.load_seconds.toFixed(2)} s
          </span>
          <span data-stat="evictions">{stats.evictions} evictions</span>
        </div>
      )}
    </div>
  );
}
