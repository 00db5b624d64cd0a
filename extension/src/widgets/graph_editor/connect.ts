/**
 * Whether a drag from one port to another may become an edge, and why not.
 *
 * Mirrors invoke_nb.graph.validate.check_edge (field exists, connection mode, one edge per
 * input except collect.item, no cycles, types via `compatible`), including the inferred
 * types of iterate.item and collect.collection. The kernel checks again; this is for
 * immediate feedback while dragging.
 */
import { compatible, describe, type TypeDescriptor } from "../../shared/types";
import type { EdgeParams, GraphJSON, Schemas } from "./protocol";

const ANY: TypeDescriptor = { kind: "any" };

export type Check = { ok: true } | { ok: false; reason: string };

export function outputType(
  graph: GraphJSON,
  schemas: Schemas,
  nodeId: string,
  field: string,
  seen: Set<string> = new Set(),
): TypeDescriptor | undefined {
  const node = graph.nodes[nodeId];
  const schema = node && schemas[node.type];
  const out = schema?.outputs[field];
  if (!out) return undefined;
  if (seen.has(nodeId)) return ANY;
  const next = new Set(seen).add(nodeId);
  if (node.type === "iterate" && field === "item") {
    const e = graph.edges.find((e) => e.destination.node_id === nodeId && e.destination.field === "collection");
    if (!e) return ANY;
    const src = outputType(graph, schemas, e.source.node_id, e.source.field, next) ?? ANY;
    return src.kind === "list" ? src.item : ANY;
  }
  if (node.type === "collect" && field === "collection") {
    const items = graph.edges
      .filter((e) => e.destination.node_id === nodeId && e.destination.field === "item")
      .map((e) => outputType(graph, schemas, e.source.node_id, e.source.field, next) ?? ANY)
      .filter((t) => t.kind !== "any");
    return { kind: "list", item: items[0] ?? ANY };
  }
  return out.type;
}

function reaches(graph: GraphJSON, from: string, to: string): boolean {
  const stack = [from];
  const seen = new Set<string>();
  while (stack.length) {
    const n = stack.pop()!;
    if (n === to) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const e of graph.edges) if (e.source.node_id === n) stack.push(e.destination.node_id);
  }
  return false;
}

export function checkConnection(graph: GraphJSON, schemas: Schemas, c: EdgeParams): Check {
  const src = graph.nodes[c.source];
  const dst = graph.nodes[c.destination];
  if (!src || !dst) return { ok: false, reason: `no node ${!src ? c.source : c.destination}` };
  if (c.source === c.destination) return { ok: false, reason: "a node cannot feed itself" };
  const dstSchema = schemas[dst.type];
  const input = dstSchema?.inputs[c.destination_field];
  if (!input) return { ok: false, reason: `${dst.type} has no input ${c.destination_field}` };
  if (input.input === "direct") {
    return { ok: false, reason: `${c.destination}.${c.destination_field} takes a value, not a connection` };
  }
  const srcType = outputType(graph, schemas, c.source, c.source_field);
  if (!srcType) return { ok: false, reason: `${src.type} has no output ${c.source_field}` };
  const multi = dst.type === "collect" && c.destination_field === "item";
  if (!multi) {
    const taken = graph.edges.find(
      (e) => e.destination.node_id === c.destination && e.destination.field === c.destination_field,
    );
    if (taken) {
      return {
        ok: false,
        reason: `${c.destination}.${c.destination_field} is already fed by ${taken.source.node_id}.${taken.source.field}; delete that edge first`,
      };
    }
  }
  if (reaches(graph, c.destination, c.source)) {
    return { ok: false, reason: `connecting ${c.source} to ${c.destination} would make a cycle` };
  }
  if (multi) return { ok: true };
  if (dst.type === "iterate" && c.destination_field === "collection") {
    return srcType.kind === "list" || srcType.kind === "any"
      ? { ok: true }
      : { ok: false, reason: `iterate needs a collection, but ${c.source}.${c.source_field} gives ${describe(srcType)}` };
  }
  if (!compatible(srcType, input.type)) {
    return {
      ok: false,
      reason: `${c.source}.${c.source_field} (${describe(srcType)}) does not fit ${c.destination}.${c.destination_field} (${describe(input.type)})`,
    };
  }
  return { ok: true };
}
