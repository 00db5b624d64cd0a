/**
 * The graph editor's side of the kernel boundary (mirrors invoke_nb/widgets/graph_editor.py).
 * State the kernel owns arrives in the `graph_data` trait; edits go out as requests that the
 * Python Graph validates; run progress arrives as `node_state` events.
 */
import type { TypeDescriptor } from "../../shared/types";

export interface FieldSchema {
  name: string;
  title: string;
  description: string;
  type: TypeDescriptor;
  input?: "direct" | "connection" | "any";
  ui_hint?: string | null;
  ui_order?: number;
  required?: boolean;
  schema?: Record<string, unknown>;
}

export interface NodeSchema {
  type: string;
  title: string;
  category: string;
  tags: string[];
  version: string;
  description: string;
  inputs: Record<string, FieldSchema>;
  outputs: Record<string, FieldSchema>;
}

export type Schemas = Record<string, NodeSchema>;

export interface EdgeJSON {
  source: { node_id: string; field: string };
  destination: { node_id: string; field: string };
}

export interface NodeJSON {
  id: string;
  type: string;
  is_intermediate?: boolean;
  use_cache?: boolean;
  [field: string]: unknown;
}

export interface GraphJSON {
  id?: string;
  nodes: Record<string, NodeJSON>;
  edges: EdgeJSON[];
}

export interface XY {
  x: number;
  y: number;
}

/** The `graph_data` trait. */
export interface GraphData {
  graph: GraphJSON;
  layout: Record<string, XY>;
  labels: Record<string, string>;
  version: number;
}

export type RunState = "idle" | "queued" | "running" | "done" | "cached" | "error";

export interface NodeState {
  node_id: string;
  state: RunState;
  progress?: number | null;
  message?: string;
  error?: string;
  outputs?: Record<string, unknown>;
}

export interface EdgeParams {
  source: string;
  source_field: string;
  destination: string;
  destination_field: string;
}

export type Methods = {
  schemas: [Record<string, never>, Schemas];
  add_node: [{ type: string; position?: XY; values?: Record<string, unknown> }, { id: string }];
  remove_nodes: [{ ids: string[] }, { removed: string[] }];
  connect: [EdgeParams, { ok: true }];
  disconnect: [EdgeParams, { ok: true }];
  set_value: [{ node_id: string; field: string; value?: unknown; unset?: boolean }, { value: unknown }];
  move: [{ positions: Record<string, XY> }, { ok: true }];
  duplicate: [{ ids: string[]; offset?: XY }, { ids: string[] }];
  validate: [Record<string, never>, { ok: boolean; error?: string; node_id?: string | null; field?: string | null }];
  invoke: [{ runs?: number }, { ok: boolean; summary?: string; items?: number[] }];
  save_workflow: [{ format: "invoke-nb" | "invokeai" }, { text: string; filename: string }];
  load_workflow: [{ text: string }, { nodes: number }];
  models: [{ node_type: string; field: string }, { models: ModelRef[]; filter: { type?: string[]; base?: string[]; variant?: string[]; format?: string[] } }];
  recent_images: [{ limit?: number; search?: string | null }, { images: ImageRef[] }];
  image_thumbnail: [{ image_name: string }, ImageRef];
  library_list: [{ query?: string | null }, { workflows: LibraryEntry[] }];
  library_open: [{ workflow_id: string }, { nodes: number; name?: string | null }];
  library_save: [{ name: string; workflow_id?: string | null; description?: string }, { workflow_id: string }];
  library_delete: [{ workflow_id: string }, { ok: true }];
};

/** A ModelIdentifierField value. */
export interface ModelRef {
  key: string;
  hash: string;
  name: string;
  base: string;
  type: string;
}

export interface ImageRef {
  image_name: string;
  width: number;
  height: number;
}

export interface LibraryEntry {
  workflow_id: string;
  name: string;
  description: string;
  category: string;
  nodes: number;
  updated_at: string;
  opened_at: string | null;
}

/** An output image shown on a node (a thumbnail, as an object URL). */
export interface NodeImage extends ImageRef {
  node_id: string;
  url?: string;
}

export type Events = {
  node_state: NodeState;
  reset_states: Record<string, never>;
  schemas_changed: Record<string, never>;
  node_image: NodeImage;
  run_error: { item_id: number; message: string };
};
