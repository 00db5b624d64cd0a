/** One node on the canvas: header with run state, input rows with editors, output rows. */
import { Handle, Position, type NodeProps, type Node } from "@xyflow/react";
import { memo, useContext, useEffect, useState } from "react";
import { describe } from "../../shared/types";
import { EditorContext } from "./context";
import { editorFor, parseInput, shownValue, type Editor } from "./fields";
import type { FieldSchema, ImageRef, ModelRef, NodeImage, NodeJSON, NodeSchema, NodeState } from "./protocol";

export interface InvocationData extends Record<string, unknown> {
  spec: NodeJSON;
  schema?: NodeSchema;
  label?: string;
  state?: NodeState;
  connected: string[];
  loading?: boolean;
  image?: NodeImage;
}

export type InvocationNode = Node<InvocationData, "invocation">;

const FLAGS = new Set(["id", "type", "is_intermediate", "use_cache"]);

/**
 * Nodes with more inputs than this (core_metadata has 37) start compact: only connected
 * inputs and required ones still unset are drawn, behind a "more fields" toggle. A 1,700 px
 * tall node would otherwise set the zoom at which the whole graph fits.
 */
export const COMPACT_ABOVE = 24;

/** The inputs a compact node still draws: connected ones and required ones without a value. */
export function compactInputs(inputs: FieldSchema[], values: Record<string, unknown>, connected: string[]): FieldSchema[] {
  return inputs.filter((f) => connected.includes(f.name) || (f.required && !(f.name in values)));
}

function NodeViewImpl({ id, data, selected }: NodeProps<InvocationNode>) {
  const { spec, schema, state, connected } = data;
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) if (!FLAGS.has(k)) values[k] = v;
  const runState = state?.state ?? "idle";
  const [expanded, setExpanded] = useState<boolean | null>(null); // null: by size
  if (!schema) {
    return (
      <div className={`inb-node inb-state-${runState} inb-unknown`}>
        <div className="inb-node-header">
          {spec.type} {data.loading ? "(loading…)" : "(unknown node type)"}
        </div>
      </div>
    );
  }
  const inputs = Object.values(schema.inputs)
    .filter((f) => f.ui_hint !== "hidden")
    .sort((a, b) => (a.ui_order ?? 0) - (b.ui_order ?? 0));
  const compact = !(expanded ?? inputs.length <= COMPACT_ABOVE);
  const shown = compact ? compactInputs(inputs, values, connected) : inputs;
  const hidden = inputs.length - shown.length;
  return (
    <div className={`inb-node inb-state-${runState}${selected ? " inb-selected" : ""}`} data-node-id={id} data-node-type={spec.type}>
      <div className="inb-node-header" title={schema.description}>
        <span className="inb-node-title">{data.label || schema.title}</span>
        <span className="inb-node-id">{id}</span>
        <span className={`inb-badge inb-badge-${runState}`}>{runState === "idle" ? "" : runState}</span>
      </div>
      {runState === "running" && state?.progress != null && (
        <div className="inb-progress">
          <div style={{ width: `${Math.round(100 * state.progress)}%` }} />
        </div>
      )}
      {state?.message && runState === "running" && <div className="inb-node-message">{state.message}</div>}
      {runState === "error" && state?.error && <div className="inb-node-error">{state.error}</div>}
      <div className="inb-node-body">
        {shown.map((f) => (
          <InputRow key={f.name} nodeId={id} nodeType={spec.type} field={f} values={values} connected={connected.includes(f.name)} />
        ))}
        {(compact ? hidden > 0 : inputs.length > COMPACT_ABOVE) && (
          <button className="nodrag inb-node-more" onClick={() => setExpanded(compact)}>
            {compact ? `▸ ${hidden} more field${hidden === 1 ? "" : "s"}` : "▾ fewer fields"}
          </button>
        )}
        {Object.values(schema.outputs).map((f) => (
          <div className="inb-row inb-output" key={f.name} title={`${f.description} (${describe(f.type)})`}>
            <span className="inb-output-name">{f.title}</span>
            {state?.outputs && f.name in state.outputs && (
              <span className="inb-output-value" data-output={f.name}>
                {formatValue(state.outputs[f.name])}
              </span>
            )}
            <Handle type="source" position={Position.Right} id={f.name} className="inb-handle" />
          </div>
        ))}
      </div>
      {data.image?.url && (
        <div className="inb-node-image">
          <img src={data.image.url} alt={data.image.image_name} title={`${data.image.image_name} (${data.image.width}×${data.image.height})`} data-image-name={data.image.image_name} />
        </div>
      )}
    </div>
  );
}

function formatValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function InputRow({ nodeId, nodeType, field, values, connected }: { nodeId: string; nodeType: string; field: FieldSchema; values: Record<string, unknown>; connected: boolean }) {
  const mode = field.input ?? "any";
  return (
    <div className={`inb-row inb-input${connected ? " inb-connected" : ""}`} title={`${field.description} (${describe(field.type)})`}>
      {mode !== "direct" && <Handle type="target" position={Position.Left} id={field.name} className="inb-handle" />}
      <label className="inb-field-name">
        {field.title}
        {field.required && !(field.name in values) && !connected ? " *" : ""}
      </label>
      {mode !== "connection" && !connected && <FieldEditor nodeId={nodeId} nodeType={nodeType} field={field} value={shownValue(field, values)} />}
    </div>
  );
}

function toText(ed: Editor, v: unknown): string {
  if (v === undefined || v === null) return "";
  if (ed.kind === "json") return JSON.stringify(v);
  return String(v);
}

function FieldEditor({ nodeId, nodeType, field, value }: { nodeId: string; nodeType: string; field: FieldSchema; value: unknown }) {
  const ctx = useContext(EditorContext);
  const ed = editorFor(field);
  const [text, setText] = useState(toText(ed, value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setText(toText(ed, value)), [value]); // eslint-disable-line react-hooks/exhaustive-deps
  const commit = (raw: unknown) => {
    setError(null);
    ctx.setValue(nodeId, field.name, raw).catch((e: Error) => {
      setError(e.message);
      setText(toText(ed, value));
    });
  };
  const commitText = (t: string) => {
    if (t === toText(ed, value)) return;
    try {
      commit(parseInput(ed, t));
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const common = { className: "nodrag inb-editor", "data-field": field.name, title: field.description };
  let input;
  switch (ed.kind) {
    case "model":
      if (ctx.models) {
        input = <ModelPicker nodeType={nodeType} field={field} value={value as ModelRef | null} onPick={commit} />;
        break;
      }
      input = <textarea {...common} className="nodrag nowheel inb-editor" rows={2} value={text} onChange={(e) => setText(e.target.value)} onBlur={(e) => commitText(e.target.value)} />;
      break;
    case "image":
      input = <ImagePicker field={field} value={value as { image_name?: string } | null} onPick={commit} />;
      break;
    case "bool":
      input = <input {...common} type="checkbox" checked={!!value} onChange={(e) => commit(e.target.checked)} />;
      break;
    case "enum":
      input = (
        <select {...common} value={JSON.stringify(value ?? null)} onChange={(e) => commit(JSON.parse(e.target.value))}>
          {(ed.nullable || value == null) && (
            <option value="null" disabled={!ed.nullable}>
              {ed.nullable ? "(none)" : "(choose)"}
            </option>
          )}
          {ed.choices!.map((c) => (
            <option key={JSON.stringify(c)} value={JSON.stringify(c)}>
              {String(c)}
            </option>
          ))}
        </select>
      );
      break;
    case "textarea":
    case "json":
      input = (
        <textarea
          {...common}
          className="nodrag nowheel inb-editor"
          rows={ed.kind === "textarea" ? 3 : 2}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onBlur={(e) => commitText(e.target.value)}
        />
      );
      break;
    case "slider":
      input = (
        <span className="inb-slider">
          <input
            {...common}
            type="range"
            min={ed.min}
            max={ed.max}
            step={ed.step}
            value={Number(text || ed.min)}
            onChange={(e) => setText(e.target.value)}
            onPointerUp={(e) => commitText((e.target as HTMLInputElement).value)}
            onKeyUp={(e) => commitText((e.target as HTMLInputElement).value)}
          />
          <span className="inb-slider-value">{text}</span>
        </span>
      );
      break;
    default:
      input = (
        <input
          {...common}
          type={ed.kind === "text" ? "text" : "number"}
          min={ed.min}
          max={ed.max}
          step={ed.step ?? "any"}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onBlur={(e) => commitText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter") commitText((e.target as HTMLInputElement).value);
          }}
        />
      );
  }
  return (
    <div className="inb-field">
      {input}
      {error && <div className="inb-field-error">{error}</div>}
    </div>
  );
}

/** A choice of the studio's models that fit this field (by the node's expected base/type). */
function ModelPicker({ nodeType, field, value, onPick }: { nodeType: string; field: FieldSchema; value: ModelRef | null; onPick: (v: unknown) => void }) {
  const ctx = useContext(EditorContext);
  const [models, setModels] = useState<ModelRef[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => ctx.models!(nodeType, field.name).then(setModels, (e: Error) => setError(e.message));
  useEffect(() => void load(), [nodeType, field.name]); // eslint-disable-line react-hooks/exhaustive-deps
  const key = value?.key ?? "";
  const known = models?.some((m) => m.key === key);
  return (
    <>
      <select
        className="nodrag inb-editor inb-model-picker"
        data-field={field.name}
        value={key}
        onFocus={() => void load()}
        onChange={(e) => {
          const m = models?.find((x) => x.key === e.target.value);
          onPick(m ?? null);
        }}
      >
        <option value="" disabled={!field.type.optional}>
          {models && models.length === 0 ? "(no fitting model installed)" : "(choose a model)"}
        </option>
        {key && !known && <option value={key}>{value?.name ?? key} (not installed)</option>}
        {(models ?? []).map((m) => (
          <option key={m.key} value={m.key}>
            {m.name} · {m.base}
          </option>
        ))}
      </select>
      {error && <div className="inb-field-error">{error}</div>}
    </>
  );
}

/** An image field: a catalog image name (typed, or dropped from the gallery), a thumbnail
 * of the current image, and a picker of recent catalog images. */
function ImagePicker({ field, value, onPick }: { field: FieldSchema; value: { image_name?: string } | null; onPick: (v: unknown) => void }) {
  const ctx = useContext(EditorContext);
  const name = value?.image_name ?? "";
  const [text, setText] = useState(name);
  const [thumb, setThumb] = useState<string | null>(null);
  const [recent, setRecent] = useState<(ImageRef & { url: string })[] | null>(null);
  const [over, setOver] = useState(false);
  useEffect(() => setText(name), [name]);
  useEffect(() => {
    setThumb(null);
    if (name && ctx.thumbnail) ctx.thumbnail(name).then(setThumb, () => setThumb(null));
  }, [name, ctx]);
  const pick = (n: string) => onPick(n.trim() ? { image_name: n.trim() } : null);
  return (
    <div
      className={`inb-image-field${over ? " inb-drop" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const dropped = e.dataTransfer.getData("application/x-invoke-nb-image") || e.dataTransfer.getData("text/plain");
        if (dropped) pick(dropped.split("\n")[0]);
      }}
    >
      {thumb && <img className="inb-image-thumb" src={thumb} alt={name} />}
      <input
        className="nodrag inb-editor"
        data-field={field.name}
        placeholder="image name (drop from the gallery)"
        value={text}
        onChange={(e) => setText(e.target.value)}
        onBlur={(e) => e.target.value !== name && pick(e.target.value)}
        onKeyDown={(e) => e.key === "Enter" && pick((e.target as HTMLInputElement).value)}
      />
      {ctx.recentImages && (
        <button
          className="nodrag inb-pick"
          onClick={() => (recent ? setRecent(null) : ctx.recentImages!().then(setRecent, () => setRecent([])))}
        >
          {recent ? "Close" : "Pick…"}
        </button>
      )}
      {recent && (
        <div className="nodrag nowheel inb-recent">
          {recent.map((r) => (
            <img
              key={r.image_name}
              src={r.url}
              title={r.image_name}
              onClick={() => {
                setRecent(null);
                pick(r.image_name);
              }}
            />
          ))}
          {recent.length === 0 && <span className="inb-empty">no images in the catalog</span>}
        </div>
      )}
    </div>
  );
}

export const NodeView = memo(NodeViewImpl);
