import { expect, it } from "vitest";
import { Dispatcher, KernelError, type MessageModel } from "../src/shared/messages";

type Listener = (msg: unknown, buffers: DataView[]) => void;

/** A model whose `send` is answered by an in-process kernel function, asynchronously. */
class LoopbackModel implements MessageModel {
  private listeners = new Set<Listener>();
  sent: unknown[] = [];
  constructor(private kernel: (msg: any, buffers: ArrayBuffer[], reply: (m: unknown, b?: DataView[]) => void) => void) {}
  send(content: unknown, _cb?: unknown, buffers: ArrayBuffer[] = []) {
    this.sent.push(content);
    setTimeout(() => this.kernel(content, buffers, (m, b = []) => this.emit(m, b)), 0);
  }
  on(_: "msg:custom", cb: Listener) {
    this.listeners.add(cb);
  }
  off(_: "msg:custom", cb?: Listener) {
    if (cb) this.listeners.delete(cb);
  }
  emit(m: unknown, b: DataView[] = []) {
    for (const l of this.listeners) l(m, b);
  }
}

type M = { add: [{ a: number; b: number }, number]; echo: [{ n: number }, number]; fail: [{}, never] };
type E = { tick: { n: number } };

const kernel = (msg: any, buffers: ArrayBuffer[], reply: (m: unknown, b?: DataView[]) => void) => {
  if (msg.method === "add") reply({ kind: "response", id: msg.id, ok: true, result: msg.params.a + msg.params.b });
  else if (msg.method === "echo") {
    reply({ kind: "response", id: msg.id, ok: true, result: buffers.length }, buffers.map((b) => new DataView(b)));
  } else reply({ kind: "response", id: msg.id, ok: false, error: { type: "FieldValueError", message: "bad b", node_id: "n1", field: "b" } });
};

it("matches responses to requests by id, in any order", async () => {
  const model = new LoopbackModel(kernel);
  const rpc = new Dispatcher<M, E>(model);
  const [x, y] = await Promise.all([rpc.call("add", { a: 1, b: 2 }), rpc.call("add", { a: 10, b: 20 })]);
  expect([x, y]).toEqual([3, 30]);
  expect(model.sent).toEqual([
    { kind: "request", id: 1, method: "add", params: { a: 1, b: 2 } },
    { kind: "request", id: 2, method: "add", params: { a: 10, b: 20 } },
  ]);
  expect(rpc.inFlight).toBe(0);
});

it("carries binary buffers both ways", async () => {
  const rpc = new Dispatcher<M, E>(new LoopbackModel(kernel));
  const buf = new Uint8Array([1, 2, 3]).buffer;
  const r = await rpc.request("echo", { n: 1 }, [buf]);
  expect(r.result).toBe(1);
  expect(new Uint8Array(r.buffers[0].buffer)).toEqual(new Uint8Array([1, 2, 3]));
});

it("rejects with the kernel's error, naming node and field", async () => {
  const rpc = new Dispatcher<M, E>(new LoopbackModel(kernel));
  const err = await rpc.call("fail", {}).catch((e) => e);
  expect(err).toBeInstanceOf(KernelError);
  expect(err.message).toBe("bad b");
  expect(err.info).toMatchObject({ type: "FieldValueError", node_id: "n1", field: "b" });
});

it("delivers events to listeners until they unsubscribe, and ignores foreign messages", () => {
  const model = new LoopbackModel(kernel);
  const rpc = new Dispatcher<M, E>(model);
  const seen: number[] = [];
  const off = rpc.on("tick", (d) => seen.push(d.n));
  model.emit({ kind: "event", name: "tick", data: { n: 1 } });
  model.emit({ kind: "anywidget-command", id: 5 });
  model.emit("not an object");
  model.emit({ kind: "response", id: 999, ok: true, result: 1 });
  off();
  model.emit({ kind: "event", name: "tick", data: { n: 2 } });
  expect(seen).toEqual([1]);
});

it("times out and fails pending requests on dispose", async () => {
  const silent = new LoopbackModel(() => undefined);
  const slow = new Dispatcher<M, E>(silent, 20);
  await expect(slow.call("add", { a: 1, b: 1 })).rejects.toThrow(/timed out after 20 ms/);
  const rpc = new Dispatcher<M, E>(silent);
  const p = rpc.call("add", { a: 1, b: 1 });
  rpc.dispose();
  await expect(p).rejects.toThrow(/widget closed/);
});
