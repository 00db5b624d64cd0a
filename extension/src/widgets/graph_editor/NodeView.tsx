/** One node on the canvas: header with run state, input rows with editors, output rows. */
import { Handle, Position, type NodeProps, type Node } from "@xyflow/react";
import { memo, useContext, useEffect, useState } from "react";
import { describe } from "../../shared/types";
import { EditorContext } from "./context";
import { editorFor, parseInput, shownValue, type Editor } from "./fields";
import type { FieldSchema, NodeJSON, NodeSchema, NodeState } from "./protocol";

export interface InvocationData extends Record<string, unknown> {
  spec: NodeJSON;
  schema?: NodeSchema;
  label?: string;
  state?: NodeState;
  connected: string[];
  loading?: boolean;
}

export type InvocationNode = Node<InvocationData, "invocation">;

const FLAGS = new Set(["id", "type", "is_intermediate", "use_cache"]);

function NodeViewImpl({ id, data, selected }: NodeProps<InvocationNode>) {
  const { spec, schema, state, connected } = data;
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) if (!FLAGS.has(k)) values[k] = v;
  const runState = state?.state ?? "idle";
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
        {inputs.map((f) => (
          <InputRow key={f.name} nodeId={id} field={f} values={values} connected={connected.includes(f.name)} />
        ))}
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
    </div>
  );
}

function formatValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function InputRow({ nodeId, field, values, connected }: { nodeId: string; field: FieldSchema; values: Record<string, unknown>; connected: boolean }) {
  const mode = field.input ?? "any";
  return (
    <div className={`inb-row inb-input${connected ? " inb-connected" : ""}`} title={`${field.description} (${describe(field.type)})`}>
      {mode !== "direct" && <Handle type="target" position={Position.Left} id={field.name} className="inb-handle" />}
      <label className="inb-field-name">
        {field.title}
        {field.required && !(field.name in values) && !connected ? " *" : ""}
      </label>
      {mode !== "connection" && !connected && <FieldEditor nodeId={nodeId} field={field} value={shownValue(field, values)} />}
    </div>
  );
}

function toText(ed: Editor, v: unknown): string {
  if (v === undefined || v === null) return "";
  if (ed.kind === "json") return JSON.stringify(v);
  return String(v);
}

function FieldEditor({ nodeId, field, value }: { nodeId: string; field: FieldSchema; value: unknown }) {
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

export const NodeView = memo(NodeViewImpl);
