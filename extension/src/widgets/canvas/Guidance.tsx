/**
 * The panel's guidance controls, as InvokeAI's canvas has them: a control layer's adapter
 * settings, regional guidance layers (paint target, prompts, reference images) and global
 * reference images (IP-Adapters). Every edit is a document change, synced to the kernel.
 */
import { useRef } from "react";
import type { ControlDoc, LayerDoc } from "./doc";
import type { ModelRow, ReferenceDoc } from "./protocol";
import { INPAINT, type CanvasStore } from "./store";

const MODES: ControlDoc["mode"][] = ["balanced", "more_prompt", "more_control", "unbalanced"];

/** A number input that only reports finite values (an edit in progress stays on screen). */
function Num({ label, value, min, max, step, testid, onChange }: {
  label: string; value: number; min: number; max: number; step: number; testid?: string; onChange: (v: number) => void;
}) {
  return (
    <label>
      {label}
      <input
        type="number" min={min} max={max} step={step} defaultValue={value} data-testid={testid}
        onChange={(e) => {
          const n = Number(e.target.value);
          if (e.target.value.trim() !== "" && Number.isFinite(n) && n >= min && n <= max) onChange(n);
        }}
      />
    </label>
  );
}

function ModelSelect({ models, value, testid, empty, onChange }: {
  models: ModelRow[]; value: string | null; testid: string; empty: string; onChange: (key: string | null) => void;
}) {
  return (
    <select value={value ?? ""} data-testid={testid} onChange={(e) => onChange(e.target.value || null)}>
      <option value="">{models.length ? "(pick a model)" : empty}</option>
      {models.map((m) => (
        <option key={m.key} value={m.key}>
          {m.name} ({m.base})
        </option>
      ))}
    </select>
  );
}

/** A control layer's adapter: model, weight, begin/end and (for a ControlNet) control mode. */
export function ControlSettings({ store, layer }: { store: CanvasStore; layer: LayerDoc }) {
  const c = layer.control ?? store.defaultControl();
  const put = (patch: Partial<ControlDoc>) => store.updateLayer(layer.id, { control: { ...c, ...patch } });
  const isControlNet = store.models.control.find((m) => m.key === c.model)?.type !== "t2i_adapter";
  return (
    <div className="inb-cv-guide" data-control-of={layer.id} onClick={(e) => e.stopPropagation()}>
      <ModelSelect models={store.models.control} value={c.model} testid="control-model" empty="(no ControlNet or T2I-Adapter installed)" onChange={(model) => put({ model })} />
      <div className="inb-cv-grid">
        <Num label="Weight" value={c.weight} min={-1} max={2} step={0.05} testid="control-weight" onChange={(weight) => put({ weight })} />
        <Num label="Begin" value={c.begin} min={0} max={1} step={0.05} testid="control-begin" onChange={(begin) => put({ begin })} />
        <Num label="End" value={c.end} min={0} max={1} step={0.05} testid="control-end" onChange={(end) => put({ end })} />
        {isControlNet && (
          <label>
            Mode
            <select value={c.mode} data-testid="control-mode" onChange={(e) => put({ mode: e.target.value as ControlDoc["mode"] })}>
              {MODES.map((m) => (
                <option key={m} value={m}>{m}</option>
              ))}
            </select>
          </label>
        )}
      </div>
    </div>
  );
}

/** A button that picks an image file and sends its bytes as a reference image. */
function AddReference({ store, region, testid }: { store: CanvasStore; region: string | null; testid: string }) {
  const ref = useRef<HTMLInputElement>(null);
  const send = async (f: File) => {
    try {
      await store.flush(); // the kernel must know the region first
      await store.rpc.request("add_reference", { name: f.name, region }, [await f.arrayBuffer()]);
    } catch (e) {
      store.fail((e as Error).message);
    }
  };
  return (
    <>
      <button onClick={() => ref.current?.click()}>Add reference image…</button>
      <input
        ref={ref} type="file" accept="image/*" style={{ display: "none" }} data-testid={testid}
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) void send(f);
          e.target.value = "";
        }}
      />
    </>
  );
}

function Reference({ store, r }: { store: CanvasStore; r: ReferenceDoc }) {
  const put = (patch: Partial<ReferenceDoc>) => store.updateReference(r.id, patch);
  return (
    <div className="inb-cv-ref" data-reference-id={r.id}>
      <img src={store.refImages.get(r.id)?.src} title={`${r.name} (${r.width}×${r.height})`} />
      <div>
        <ModelSelect models={store.models.ip} value={r.model} testid="ip-model" empty="(no IP-Adapter installed)" onChange={(model) => put({ model })} />
        <div className="inb-cv-grid">
          <Num label="Weight" value={r.weight} min={-1} max={2} step={0.05} testid="ip-weight" onChange={(weight) => put({ weight })} />
          <button title="delete" onClick={() => store.removeReference(r.id)}>✕</button>
        </div>
      </div>
    </div>
  );
}

/** Regional guidance layers: each a painted mask with prompts and reference images. */
export function Regions({ store }: { store: CanvasStore }) {
  const { doc, target } = store;
  return (
    <>
      <div className="inb-cv-section">Regional guidance</div>
      {doc.regions.map((r) => (
        <div key={r.id} className={`inb-cv-region${target === r.id ? " inb-on" : ""}`} data-region-id={r.id}>
          <div className="inb-cv-row">
            <span className="inb-cv-swatch" style={{ background: r.color }} />
            <input type="checkbox" checked={r.visible} title="visible" onChange={(e) => store.updateRegion(r.id, { visible: e.target.checked })} />
            <span className="inb-cv-layer-name">{r.name}</span>
            <button data-action="paint-region" className={target === r.id ? "inb-on" : ""} onClick={() => store.set("target", target === r.id ? INPAINT : r.id)}>
              Paint
            </button>
            <button title="delete" onClick={() => store.removeRegion(r.id)}>✕</button>
          </div>
          <textarea rows={2} placeholder="Regional prompt" data-testid="region-prompt" defaultValue={r.prompt} onChange={(e) => store.updateRegion(r.id, { prompt: e.target.value })} />
          <textarea rows={1} placeholder="Regional negative prompt" data-testid="region-negative" defaultValue={r.negative} onChange={(e) => store.updateRegion(r.id, { negative: e.target.value })} />
          {doc.references.filter((x) => x.region === r.id).map((x) => (
            <Reference key={x.id} store={store} r={x} />
          ))}
          <AddReference store={store} region={r.id} testid="region-ref-file" />
        </div>
      ))}
      <div className="inb-cv-row">
        <button data-action="add-region" onClick={() => store.addRegion()}>Add region</button>
      </div>
    </>
  );
}

/** Global reference images (IP-Adapters over the whole picture). */
export function References({ store }: { store: CanvasStore }) {
  return (
    <div className="inb-cv-refs" data-testid="references">
      <div className="inb-cv-section">Reference images</div>
      {store.doc.references.filter((r) => r.region === null).map((r) => (
        <Reference key={r.id} store={store} r={r} />
      ))}
      <div className="inb-cv-row">
        <AddReference store={store} region={null} testid="ref-file" />
      </div>
    </div>
  );
}
