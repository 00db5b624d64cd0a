/**
 * The graph editor: palette, canvas (xyflow), toolbar. The kernel's Graph is the truth:
 * every edit is a request the Python Graph validates; the new state comes back through the
 * `graph_data` trait, and a refusal comes back as an error shown to the person.
 */
import {
  Background,
  Controls,
  MiniMap,
  Panel,
  ReactFlow,
  useConnection,
  useNodesInitialized,
  useReactFlow,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type NodeChange,
  type EdgeChange,
  applyNodeChanges,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Dispatcher } from "../../shared/messages";
import { checkConnection } from "./connect";
import { EditorContext, type EditorActions } from "./context";
import { fitViewport, freeSpot, layeredLayout, MIN_FIT_ZOOM } from "./layout";
import { NodeView, type InvocationNode } from "./NodeView";
import { Palette } from "./Palette";
import type { EdgeParams, Events, GraphData, LibraryEntry, Methods, NodeImage, NodeState, Schemas } from "./protocol";

export interface ModelLike {
  get(name: "graph_data"): GraphData;
  get(name: "busy"): boolean;
  get(name: "pending"): number;
  get(name: "features"): string[];
  get(name: "workflow_id"): string | null;
  on(name: string, cb: () => void): void;
  off(name: string, cb: () => void): void;
}

type TraitName = "graph_data" | "busy" | "pending" | "features" | "workflow_id";

function blobUrl(buf: DataView): string {
  return URL.createObjectURL(new Blob([buf as unknown as ArrayBuffer], { type: "image/png" }));
}

const nodeTypes = { invocation: NodeView };

function useTrait<T>(model: ModelLike, name: TraitName): T {
  const [value, setValue] = useState<T>(() => model.get(name as "graph_data") as T);
  useEffect(() => {
    const cb = () => setValue(model.get(name as "graph_data") as T);
    model.on(`change:${name}`, cb);
    return () => model.off(`change:${name}`, cb);
  }, [model, name]);
  return value;
}

export function edgeId(e: EdgeParams): string {
  return `${e.source}.${e.source_field}->${e.destination}.${e.destination_field}`;
}

function toParams(c: Connection | Edge): EdgeParams {
  return {
    source: c.source,
    source_field: c.sourceHandle ?? "",
    destination: c.target,
    destination_field: c.targetHandle ?? "",
  };
}

type Toast = { kind: "error" | "info"; text: string; at: number };

export function App({ model, rpc }: { model: ModelLike; rpc: Dispatcher<Methods, Events> }) {
  const data = useTrait<GraphData>(model, "graph_data");
  const busy = useTrait<boolean>(model, "busy");
  const pending = useTrait<number>(model, "pending") ?? 0;
  const features = useTrait<string[]>(model, "features") ?? [];
  const workflowId = useTrait<string | null>(model, "workflow_id") ?? null;
  const studio = features.includes("studio");
  const [runs, setRuns] = useState(1);
  const [images, setImages] = useState<Record<string, NodeImage>>({});
  const [library, setLibrary] = useState(false);
  const [schemas, setSchemas] = useState<Schemas>({});
  const [states, setStates] = useState<Record<string, NodeState>>({});
  const [nodes, setNodes] = useState<InvocationNode[]>([]);
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());
  const [toast, setToast] = useState<Toast | null>(null);
  const flow = useReactFlow();
  const paneRef = useRef<HTMLDivElement>(null);
  // Show the whole graph if it fits at a readable zoom; a larger one from its left edge.
  const fitGraph = useCallback(() => {
    const pane = paneRef.current;
    const ns = flow.getNodes();
    if (!pane || !ns.length) return;
    flow.setViewport(fitViewport(flow.getNodesBounds(ns), { width: pane.clientWidth, height: pane.clientHeight }));
  }, [flow]);
  const fileRef = useRef<HTMLInputElement>(null);
  const laidOut = useRef<Set<string>>(new Set());
  const graphId = useRef<string | undefined>(undefined);

  const show = useCallback((kind: Toast["kind"], text: string) => setToast({ kind, text, at: Date.now() }), []);
  const fail = useCallback((e: unknown) => show("error", (e as Error).message), [show]);

  useEffect(() => {
    const load = () => rpc.call("schemas", {}).then(setSchemas, fail);
    load();
    const offs = [
      rpc.on("schemas_changed", load),
      rpc.on("node_state", (s) => setStates((prev) => ({ ...prev, [s.node_id]: s }))),
      rpc.on("reset_states", () => setStates({})),
      rpc.on("node_image", (img, buffers) => {
        if (!buffers[0]) return;
        const url = blobUrl(buffers[0]);
        setImages((prev) => {
          const old = prev[img.node_id]?.url;
          if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
          return { ...prev, [img.node_id]: { ...img, url } };
        });
      }),
      rpc.on("run_error", (e) => show("error", `run ${e.item_id} failed: ${e.message}`)),
    ];
    return () => offs.forEach((f) => f());
  }, [rpc, fail, show]);

  // Rebuild the canvas nodes from the kernel's graph, keeping local selection and sizes.
  useEffect(() => {
    const g = data.graph;
    const connected: Record<string, string[]> = {};
    for (const e of g.edges) (connected[e.destination.node_id] ??= []).push(e.destination.field);
    const fresh = graphId.current !== g.id;
    if (fresh) {
      // another graph (editor.graph = g, or a loaded workflow): nothing carries over
      graphId.current = g.id;
      laidOut.current.clear();
    }
    setNodes((prev) => {
      const old = new Map(fresh ? [] : prev.map((n) => [n.id, n]));
      return Object.values(g.nodes).map((spec, i) => {
        const p = old.get(spec.id);
        return {
          ...(p ?? {}),
          id: spec.id,
          type: "invocation" as const,
          // nodes without a position wait (measured, not yet shown) for the auto-layout below
          position: data.layout[spec.id] ?? p?.position ?? { x: 300 * i, y: 0 },
          style: data.layout[spec.id] || p?.position ? p?.style : { opacity: 0 },
          data: {
            spec,
            schema: schemas[spec.type],
            label: data.labels[spec.id],
            state: states[spec.id],
            connected: connected[spec.id] ?? [],
            loading: Object.keys(schemas).length === 0,
            image: images[spec.id],
          },
        };
      });
    });
  }, [data, schemas, states, images]);

  // Auto-layout nodes that have no position (graphs built in Python, imported graphs), once
  // they are measured, so the layered layout knows their real sizes.
  const measured = useNodesInitialized();
  useEffect(() => {
    if (!measured || Object.keys(schemas).length === 0) return;
    // wait a moment: nodes drawn before the schemas arrived are re-measured with their fields
    const t = setTimeout(() => {
      const ids = Object.keys(data.graph.nodes);
      const missing = ids.filter((id) => !data.layout[id] && !laidOut.current.has(id));
      if (!missing.length) return;
      missing.forEach((id) => laidOut.current.add(id));
      const pos = layeredLayout(data.graph, sizeOf);
      const all = missing.length === ids.length;
      setNodes((ns) => ns.map((n) => (missing.includes(n.id) ? { ...n, position: pos[n.id], style: {} } : n)));
      rpc
        .call("move", { positions: Object.fromEntries(missing.map((id) => [id, pos[id]])) })
        .then(() => all && setTimeout(() => fitGraph(), 30), fail);
    }, 120);
    return () => clearTimeout(t);
  }, [measured, data, schemas, rpc, flow, fail]); // eslint-disable-line react-hooks/exhaustive-deps

  function sizeOf(id: string) {
    const n = flow.getNode(id);
    return { width: n?.measured?.width ?? 260, height: n?.measured?.height ?? 180 };
  }

  const edges: Edge[] = useMemo(
    () =>
      data.graph.edges.map((e) => {
        const p = { source: e.source.node_id, source_field: e.source.field, destination: e.destination.node_id, destination_field: e.destination.field };
        const id = edgeId(p);
        const running = states[p.source]?.state === "running" || states[p.destination]?.state === "running";
        return { id, source: p.source, sourceHandle: p.source_field, target: p.destination, targetHandle: p.destination_field, selected: selectedEdges.has(id), animated: running };
      }),
    [data, selectedEdges, states],
  );

  const onNodesChange = useCallback((changes: NodeChange<InvocationNode>[]) => {
    setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "remove"), ns));
  }, []);
  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    setSelectedEdges((prev) => {
      const next = new Set(prev);
      for (const c of changes) if (c.type === "select") (c.selected ? next.add(c.id) : next.delete(c.id));
      return next;
    });
  }, []);

  const isValidConnection = useCallback(
    (c: Connection | Edge) => checkConnection(data.graph, schemas, toParams(c)).ok,
    [data, schemas],
  );
  const onConnect = useCallback((c: Connection) => rpc.call("connect", toParams(c)).catch(fail), [rpc, fail]);
  const onConnectEnd = useCallback(
    (_: unknown, s: FinalConnectionState) => {
      if (!s.fromHandle || !s.toHandle || s.isValid !== false) return;
      const check = checkConnection(data.graph, schemas, handlesToParams(s.fromHandle, s.toHandle));
      if (!check.ok) show("error", `Cannot connect: ${check.reason}`);
    },
    [data, schemas, show],
  );
  const onDelete = useCallback(
    ({ nodes: ns, edges: es }: { nodes: InvocationNode[]; edges: Edge[] }) => {
      const gone = new Set(ns.map((n) => n.id));
      const work: Promise<unknown>[] = [];
      for (const e of es) if (!gone.has(e.source) && !gone.has(e.target)) work.push(rpc.call("disconnect", toParams(e)));
      if (gone.size) work.push(rpc.call("remove_nodes", { ids: [...gone] }));
      Promise.all(work).catch(fail);
    },
    [rpc, fail],
  );
  const onNodeDragStop = useCallback(
    (_: unknown, __: InvocationNode, dragged: InvocationNode[]) => {
      rpc.call("move", { positions: Object.fromEntries(dragged.map((n) => [n.id, n.position])) }).catch(fail);
    },
    [rpc, fail],
  );

  const addNode = useCallback(
    (type: string) => {
      const r = paneRef.current?.getBoundingClientRect();
      const center = r ? flow.screenToFlowPosition({ x: r.left + r.width / 2, y: r.top + r.height / 2 }) : { x: 0, y: 0 };
      const size = { width: 240, height: 160 };
      const taken = nodes.map((n) => ({ ...n.position, ...sizeOf(n.id) }));
      const position = freeSpot({ x: center.x - size.width / 2, y: center.y - size.height / 2 }, size, taken);
      rpc.call("add_node", { type, position }).then((r) => show("info", `added ${r.id}`), fail);
    },
    [flow, nodes, rpc, show, fail], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const selectedIds = () => nodes.filter((n) => n.selected).map((n) => n.id);
  const duplicate = () => {
    const ids = selectedIds();
    if (!ids.length) return show("info", "select nodes to duplicate");
    rpc.call("duplicate", { ids }).then((r) => show("info", `duplicated as ${r.ids.join(", ")}`), fail);
  };
  const removeSelected = () => {
    const ids = selectedIds();
    const es = edges.filter((e) => e.selected);
    onDelete({ nodes: nodes.filter((n) => ids.includes(n.id)), edges: es });
  };
  const autoLayout = () => {
    const pos = layeredLayout(data.graph, sizeOf);
    rpc.call("move", { positions: pos }).then(() => setTimeout(() => fitGraph(), 50), fail);
  };
  const invoke = () => {
    setStates({});
    rpc.call("invoke", studio ? { runs } : {}).then((r) => show(r.ok ? "info" : "error", r.summary ?? "done"), fail);
  };
  const validate = () =>
    rpc.call("validate", {}).then((r) => show(r.ok ? "info" : "error", r.ok ? "graph is valid" : r.error ?? "invalid"), fail);
  const save = (format: "invoke-nb" | "invokeai") =>
    rpc.call("save_workflow", { format }).then(({ text, filename }) => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      a.download = filename;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    }, fail);
  const load = async (file: File) => {
    try {
      const r = await rpc.call("load_workflow", { text: await file.text() });
      show("info", `loaded ${file.name} (${r.nodes} nodes)`);
      setTimeout(() => fitGraph(), 100);
    } catch (e) {
      fail(e);
    }
  };

  const actions: EditorActions = useMemo(() => {
    const base: EditorActions = { setValue: async (node_id, field, value) => void (await rpc.call("set_value", { node_id, field, value })) };
    if (!studio) return base;
    return {
      ...base,
      models: async (node_type, field) => (await rpc.call("models", { node_type, field })).models,
      recentImages: async () => {
        const { result, buffers } = await rpc.request("recent_images", { limit: 24 });
        return result.images.map((r, i) => ({ ...r, url: blobUrl(buffers[i]) }));
      },
      thumbnail: async (image_name) => blobUrl((await rpc.request("image_thumbnail", { image_name })).buffers[0]),
    };
  }, [rpc, studio]);

  useEffect(() => {
    if (!toast) return;
    const t = setTimeout(() => setToast(null), toast.kind === "error" ? 8000 : 3000);
    return () => clearTimeout(t);
  }, [toast]);

  return (
    <EditorContext.Provider value={actions}>
      <div
        className="inb-editor-root"
        onKeyDown={(e) => {
          if ((e.ctrlKey || e.metaKey) && e.key === "d") {
            e.preventDefault();
            duplicate();
          }
        }}
      >
        <div className="inb-toolbar">
          <button className="inb-invoke" disabled={busy} onClick={invoke}>
            {busy ? "Running…" : "Invoke"}
          </button>
          {studio && (
            <>
              <label title="batch count: how many times to queue the graph">
                ×
                <input
                  className="inb-runs"
                  type="number"
                  min={1}
                  max={1000}
                  value={runs}
                  aria-label="Runs"
                  onChange={(e) => setRuns(Math.max(1, Math.min(1000, Math.floor(Number(e.target.value)) || 1)))}
                />
              </label>
              {pending > 0 && <span className="inb-pending">{pending} in queue</span>}
            </>
          )}
          <button onClick={validate}>Validate</button>
          <button onClick={autoLayout}>Auto-layout</button>
          <button onClick={duplicate}>Duplicate</button>
          <button onClick={removeSelected}>Delete</button>
          <span className="inb-sep" />
          <button onClick={() => save("invoke-nb")}>Save</button>
          <button onClick={() => save("invokeai")}>Save as InvokeAI</button>
          <button onClick={() => fileRef.current?.click()}>Load…</button>
          {studio && <button onClick={() => setLibrary((v) => !v)}>Library…</button>}
          <input
            ref={fileRef}
            type="file"
            accept=".json,application/json"
            style={{ display: "none" }}
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) void load(f);
              e.target.value = "";
            }}
          />
          <span className="inb-count">
            {Object.keys(data.graph.nodes).length} nodes · {data.graph.edges.length} edges
          </span>
        </div>
        <div className="inb-main">
          <Palette schemas={schemas} onAdd={addNode} />
          <div className="inb-pane" ref={paneRef}>
            {library && (
              <Library
                rpc={rpc}
                workflowId={workflowId}
                onClose={() => setLibrary(false)}
                onOpened={(name) => {
                  setLibrary(false);
                  show("info", `opened ${name}`);
                  setTimeout(() => fitGraph(), 150);
                }}
                show={show}
              />
            )}
            <ReactFlow<InvocationNode, Edge>
              nodes={nodes}
              edges={edges}
              nodeTypes={nodeTypes}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              onDelete={onDelete}
              onNodeDragStop={onNodeDragStop}
              deleteKeyCode={["Backspace", "Delete"]}
              minZoom={0.1}
              fitView
              fitViewOptions={{ maxZoom: 1, minZoom: MIN_FIT_ZOOM, padding: 0.1 }}
              proOptions={{ hideAttribution: true }}
            >
              <Background />
              <MiniMap pannable zoomable />
              <Controls />
              <ConnectionHint data={data} schemas={schemas} />
              {toast && (
                <Panel position="bottom-center">
                  <div className={`inb-toast inb-toast-${toast.kind}`} role={toast.kind === "error" ? "alert" : "status"}>
                    {toast.text}
                  </div>
                </Panel>
              )}
            </ReactFlow>
          </div>
        </div>
      </div>
    </EditorContext.Provider>
  );
}

function handlesToParams(a: { nodeId: string; id?: string | null; type: string }, b: { nodeId: string; id?: string | null }): EdgeParams {
  const [src, dst] = a.type === "source" ? [a, b] : [b, a];
  return { source: src.nodeId, source_field: src.id ?? "", destination: dst.nodeId, destination_field: dst.id ?? "" };
}

/** While dragging over a port that refuses the connection, say why. */
function ConnectionHint({ data, schemas }: { data: GraphData; schemas: Schemas }) {
  const c = useConnection();
  if (!c.inProgress || !c.toHandle || c.isValid !== false) return null;
  const check = checkConnection(data.graph, schemas, handlesToParams(c.fromHandle, c.toHandle));
  if (check.ok) return null;
  return (
    <Panel position="top-center">
      <div className="inb-toast inb-toast-error inb-hint">{check.reason}</div>
    </Panel>
  );
}

/** The studio's workflow library: save the graph (new or over the open entry), list, open, delete. */
function Library({
  rpc,
  workflowId,
  onClose,
  onOpened,
  show,
}: {
  rpc: Dispatcher<Methods, Events>;
  workflowId: string | null;
  onClose: () => void;
  onOpened: (name: string) => void;
  show: (kind: "error" | "info", text: string) => void;
}) {
  const [entries, setEntries] = useState<LibraryEntry[]>([]);
  const [query, setQuery] = useState("");
  const current = entries.find((e) => e.workflow_id === workflowId);
  const [name, setName] = useState("");
  const fail = (e: unknown) => show("error", (e as Error).message);
  const refresh = useCallback(() => rpc.call("library_list", { query: query || null }).then((r) => setEntries(r.workflows), fail), [rpc, query]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => void refresh(), [refresh]);
  useEffect(() => {
    if (current && !name) setName(current.name);
  }, [current]); // eslint-disable-line react-hooks/exhaustive-deps
  const save = (asNew: boolean) => {
    const n = name.trim();
    if (!n) return show("error", "give the workflow a name");
    rpc.call("library_save", { name: n, workflow_id: asNew ? null : workflowId }).then(() => {
      show("info", `saved ${n} to the library`);
      void refresh();
    }, fail);
  };
  return (
    <div className="inb-library nodrag nowheel" role="dialog" aria-label="Workflow library">
      <div className="inb-library-row">
        <strong className="inb-grow">Workflow library</strong>
        <button onClick={onClose}>Close</button>
      </div>
      <div className="inb-library-row">
        <input className="inb-grow" placeholder="name" aria-label="Workflow name" value={name} onChange={(e) => setName(e.target.value)} />
        {workflowId && current && <button onClick={() => save(false)}>Save</button>}
        <button onClick={() => save(true)}>Save new</button>
      </div>
      <input type="search" placeholder="Search the library…" value={query} onChange={(e) => setQuery(e.target.value)} />
      {entries.map((e) => (
        <div key={e.workflow_id} className="inb-library-item" data-workflow-id={e.workflow_id}>
          <span className="inb-library-name" title={e.description || e.name}>
            {e.name}
            {e.workflow_id === workflowId ? " (open)" : ""}
          </span>
          <span>{e.nodes} nodes</span>
          <button onClick={() => rpc.call("library_open", { workflow_id: e.workflow_id }).then(() => onOpened(e.name), fail)}>Open</button>
          <button
            onClick={() => {
              if (window.confirm(`Delete the workflow "${e.name}" from the library?`))
                rpc.call("library_delete", { workflow_id: e.workflow_id }).then(() => void refresh(), fail);
            }}
          >
            Delete
          </button>
        </div>
      ))}
      {entries.length === 0 && <div className="inb-empty">no workflows{query ? ` matching “${query}”` : " yet"}</div>}
    </div>
  );
}
