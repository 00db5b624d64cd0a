/**
 * Arrow IPC record lists: the kernel sends tables (gallery pages, query results) as one
 * binary buffer; this turns them into plain row objects.
 */
import { tableFromIPC, type Table } from "apache-arrow";

export type Row = Record<string, unknown>;

/** Parse an Arrow IPC stream (or file) held in a buffer or view. */
export function readTable(buf: ArrayBuffer | ArrayBufferView): Table {
  const bytes =
    buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  return tableFromIPC(bytes);
}

/** Rows as plain objects; 64-bit integers become numbers when they fit, bigint otherwise. */
export function readRecords(buf: ArrayBuffer | ArrayBufferView): Row[] {
  const table = readTable(buf);
  const names = table.schema.fields.map((f) => f.name);
  const cols = names.map((n) => table.getChild(n)!);
  const rows: Row[] = new Array(table.numRows);
  for (let i = 0; i < table.numRows; i++) {
    const row: Row = {};
    names.forEach((n, j) => (row[n] = plain(cols[j].get(i))));
    rows[i] = row;
  }
  return rows;
}

function plain(v: unknown): unknown {
  if (typeof v === "bigint") {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }
  if (v && typeof v === "object" && "toArray" in v && typeof (v as { toArray: unknown }).toArray === "function") {
    return Array.from((v as { toArray(): Iterable<unknown> }).toArray(), plain);
  }
  return v;
}
