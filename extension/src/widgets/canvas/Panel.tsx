/** The canvas's controls: tools, mask actions, undo/redo, layers (raster or control), regional
 * guidance, reference images, generation settings, staging. */
import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import { moveLayer, setKind, type LayerKind } from "./doc";
import type { CanvasEngine } from "./engine";
import type { Settings, StagedItem } from "./protocol";
import { imageFromBytes } from "./raster";
import { ControlSettings, References, Regions } from "./Guidance";
import { INPAINT, type CanvasStore, type Tool } from "./store";

export interface ModelLike {
  get(name: "busy"): boolean;
  get(name: "status"): string;
  get(name: "progress"): number;
  on(name: string, cb: () => void): void;
  off(name: string, cb: () => void): void;
}

function useTrait<T>(model: ModelLike, name: "busy" | "status" | "progress"): T {
  const [v, setV] = useState<T>(() => model.get(name as "busy") as T);
  useEffect(() => {
    const cb = () => setV(model.get(name as "busy") as T);
    model.on(`change:${name}`, cb);
    return () => model.off(`change:${name}`, cb);
  }, [model, name]);
  return v;
}

const TOOLS: [Tool, string, string][] = [
  ["move", "Move", "V"],
  ["brush", "Brush", "B"],
  ["eraser", "Eraser", "E"],
  ["bbox", "Box", "C"],
  ["pan", "Pan", "H"],
];

export function Panel({ store, engine, model }: { store: CanvasStore; engine: () => CanvasEngine | null; model: ModelLike }) {
  useSyncExternalStore(
    (fn) => store.subscribe(fn),
    () => store.snapshot,
  );
  const busy = useTrait<boolean>(model, "busy");
  const status = useTrait<string>(model, "status");
  const progress = useTrait<number>(model, "progress");
  const [models, setModels] = useState<{ key: string; name: string; base: string }[]>([]);
  const [settings, setSettings] = useState<Settings>({
    prompt: "",
    negative: "",
    model: null,
    steps: 30,
    cfg_scale: 7.5,
    scheduler: "euler",
    seed: null,
    strength: 0.75,
  });
  const [gallery, setGallery] = useState<(StagedItem & { url: string })[] | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const { doc, tool } = store;

  useEffect(() => {
    store.rpc.call("models", {}).then((r) => {
      setModels(r.models);
      store.models = { main: r.models, control: r.control, ip: r.ip_adapters };
      store.emit();
      setSettings((s) => ({ ...s, model: s.model ?? r.models[0]?.key ?? null }));
    }, (e: Error) => store.fail(e.message));
  }, [store]);

  const fail = (e: unknown) => store.fail((e as Error).message);
  const put = <K extends keyof Settings>(k: K, v: Settings[K]) => setSettings((s) => ({ ...s, [k]: v }));
  const num = (k: "steps" | "cfg_scale" | "strength", text: string) => {
    const n = Number(text);
    if (text.trim() !== "" && Number.isFinite(n)) put(k, n);
  };
  const generate = async () => {
    store.error = null;
    try {
      await store.flush();
      await store.rpc.call("generate", settings);
    } catch (e) {
      fail(e);
    }
  };
  const invertMask = () => store.addMaskOp({ kind: "invert", rect: doc.bbox });
  const clearMask = () => store.addMaskOp({ kind: "clear" });
  const addFile = async (f: File) => {
    try {
      await store.rpc.request("add_file", { name: f.name, x: doc.bbox.x, y: doc.bbox.y }, [await f.arrayBuffer()]);
    } catch (e) {
      fail(e);
    }
  };
  const openGallery = async () => {
    if (gallery) return setGallery(null);
    try {
      const { result, buffers } = await store.rpc.request("recent_images", { limit: 24 });
      const imgs = await Promise.all(buffers.map((b) => imageFromBytes(b)));
      setGallery(result.images.map((it, i) => ({ ...it, url: imgs[i].src })));
    } catch (e) {
      fail(e);
    }
  };
  const staged = store.staged;
  const sel = store.selected;

  return (
    <div className="inb-cv-panel">
      <div className="inb-cv-row inb-cv-tools" role="toolbar">
        {TOOLS.map(([t, label, key]) => (
          <button key={t} className={tool === t ? "inb-on" : ""} data-tool={t} title={`${label} (${key})`} onClick={() => store.set("tool", t)}>
            {label}
          </button>
        ))}
      </div>
      <div className="inb-cv-row">
        <label className="inb-cv-size">
          Size
          <input type="range" min={2} max={256} value={store.brushSize} data-testid="brush-size" onChange={(e) => store.set("brushSize", Number(e.target.value))} />
          <span>{store.brushSize}</span>
        </label>
      </div>
      <div className="inb-cv-row">
        <button onClick={clearMask} data-action="clear-mask">Clear mask</button>
        <button onClick={invertMask} data-action="invert-mask">Invert mask</button>
      </div>
      <div className="inb-cv-row inb-cv-target" data-testid="paint-target">
        Painting: {store.target === INPAINT ? "inpaint mask" : (doc.regions.find((r) => r.id === store.target)?.name ?? "")}
        {store.target !== INPAINT && <button onClick={() => store.set("target", INPAINT)}>Inpaint mask</button>}
      </div>
      <div className="inb-cv-row">
        <button disabled={!store.history.canUndo} onClick={() => store.undo()} title="Undo (Ctrl+Z)">Undo</button>
        <button disabled={!store.history.canRedo} onClick={() => store.redo()} title="Redo (Ctrl+Shift+Z)">Redo</button>
        <button onClick={() => engine()?.fit()}>Fit</button>
      </div>

      <div className="inb-cv-section">Layers</div>
      <div className="inb-cv-layers">
        {[...doc.layers].reverse().map((l) => (
          <div key={l.id} className={`inb-cv-layer${sel === l.id ? " inb-on" : ""}`} data-layer-id={l.id} onClick={() => store.set("selected", l.id)}>
            <input type="checkbox" checked={l.visible} title="visible" onChange={(e) => store.updateLayer(l.id, { visible: e.target.checked })} onClick={(e) => e.stopPropagation()} />
            <span className="inb-cv-layer-name" title={l.name}>{l.name}</span>
            <select
              value={l.kind ?? "raster"}
              title="layer kind"
              data-testid="layer-kind"
              onClick={(e) => e.stopPropagation()}
              onChange={(e) => store.commit({ ...doc, layers: setKind(doc.layers, l.id, e.target.value as LayerKind, store.defaultControl()) })}
            >
              <option value="raster">raster</option>
              <option value="control">control</option>
            </select>
            <button title="up" onClick={() => store.commit({ ...doc, layers: moveLayer(doc.layers, l.id, 1) })}>↑</button>
            <button title="down" onClick={() => store.commit({ ...doc, layers: moveLayer(doc.layers, l.id, -1) })}>↓</button>
            <button title="delete" onClick={() => store.commit({ ...doc, layers: doc.layers.filter((x) => x.id !== l.id) })}>✕</button>
            {l.kind === "control" && <ControlSettings store={store} layer={l} />}
          </div>
        ))}
        {doc.layers.length === 0 && <div className="inb-cv-empty">no layers: generate, or add an image</div>}
      </div>
      <div className="inb-cv-row">
        <button onClick={() => fileRef.current?.click()}>Add file…</button>
        <button onClick={openGallery}>From gallery…</button>
        <input
          ref={fileRef}
          type="file"
          accept="image/*"
          style={{ display: "none" }}
          data-testid="layer-file"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void addFile(f);
            e.target.value = "";
          }}
        />
      </div>
      {gallery && (
        <div className="inb-cv-gallery">
          {gallery.map((g) => (
            <img
              key={g.image_name}
              src={g.url}
              title={`${g.image_name} (${g.width}×${g.height})`}
              onClick={() => {
                setGallery(null);
                store.rpc.call("add_image", { image_name: g.image_name, x: doc.bbox.x, y: doc.bbox.y }).catch(fail);
              }}
            />
          ))}
          {gallery.length === 0 && <div className="inb-cv-empty">no images in the catalog</div>}
        </div>
      )}

      <Regions store={store} />
      <References store={store} />

      <div className="inb-cv-section">Generate</div>
      <textarea className="inb-cv-prompt" rows={3} placeholder="Prompt" value={settings.prompt} onChange={(e) => put("prompt", e.target.value)} />
      <textarea rows={1} placeholder="Negative prompt" value={settings.negative} onChange={(e) => put("negative", e.target.value)} />
      <label>
        Model
        <select value={settings.model ?? ""} data-testid="model" onChange={(e) => put("model", e.target.value || null)}>
          {models.length === 0 && <option value="">(no main model installed)</option>}
          {models.map((m) => (
            <option key={m.key} value={m.key}>
              {m.name} ({m.base})
            </option>
          ))}
        </select>
      </label>
      <div className="inb-cv-grid">
        <label>
          Steps
          <input type="number" min={1} max={500} defaultValue={settings.steps} data-testid="steps" onChange={(e) => num("steps", e.target.value)} />
        </label>
        <label>
          CFG
          <input type="number" min={1} step={0.5} defaultValue={settings.cfg_scale} onChange={(e) => num("cfg_scale", e.target.value)} />
        </label>
        <label>
          Strength
          <input type="number" min={0} max={1} step={0.05} defaultValue={settings.strength} onChange={(e) => num("strength", e.target.value)} />
        </label>
        <label>
          Seed
          <input
            type="number"
            min={0}
            placeholder="random"
            data-testid="seed"
            onChange={(e) => put("seed", e.target.value.trim() === "" ? null : Math.floor(Number(e.target.value)))}
          />
        </label>
      </div>
      <button className="inb-cv-generate" disabled={busy || !settings.model} onClick={generate}>
        {busy ? "Generating…" : `Generate${store.mode ? ` (${store.mode})` : ""}`}
      </button>
      {busy && (
        <div className="inb-cv-progress">
          <div style={{ width: `${Math.round(100 * progress)}%` }} />
        </div>
      )}
      {status && <div className="inb-cv-status">{status}</div>}
      {store.error && (
        <div className="inb-cv-error" role="alert">
          {store.error}
        </div>
      )}
      {staged.length > 0 && (
        <div className="inb-cv-staging" data-testid="staging">
          <div>
            Staged {store.stagedIndex + 1} / {staged.length}
            {staged.length > 1 && (
              <>
                <button onClick={() => store.set("stagedIndex", (store.stagedIndex + staged.length - 1) % staged.length)}>◀</button>
                <button onClick={() => store.set("stagedIndex", (store.stagedIndex + 1) % staged.length)}>▶</button>
              </>
            )}
          </div>
          <button className="inb-cv-accept" onClick={() => store.rpc.call("accept", { index: store.stagedIndex }).catch(fail)}>
            Accept
          </button>
          <button onClick={() => store.rpc.call("discard", { index: store.stagedIndex }).catch(fail)}>Discard</button>
          <button onClick={() => store.rpc.call("discard", {}).catch(fail)}>Discard all</button>
        </div>
      )}
    </div>
  );
}
