/**
 * Request/response and events over an anywidget model's custom messages.
 *
 * The browser sends `{kind: "request", id, method, params}` with `model.send`; the kernel
 * answers `{kind: "response", id, ok, result | error}` and may push `{kind: "event", name,
 * data}` at any time. Binary payloads (images, Arrow tables) ride in the message buffers,
 * never as base64 inside JSON. The method and event maps are type parameters, so each
 * widget declares its protocol once and both call sites and handlers are checked.
 */

/** The part of anywidget's model this module needs (a real model satisfies it). */
export interface MessageModel {
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
  on(name: "msg:custom", cb: (msg: unknown, buffers: DataView[]) => void): void;
  off(name: "msg:custom", cb?: (msg: unknown, buffers: DataView[]) => void): void;
}

/** Method name -> [params, result]. */
export type MethodMap = Record<string, [unknown, unknown]>;
/** Event name -> payload. */
export type EventMap = Record<string, unknown>;

/** An error reported by the kernel for one request. */
export interface KernelErrorInfo {
  type: string;
  message: string;
  node_id?: string | null;
  field?: string | null;
}

export class KernelError extends Error {
  readonly info: KernelErrorInfo;
  constructor(info: KernelErrorInfo) {
    super(info.message);
    this.name = info.type || "KernelError";
    this.info = info;
  }
}

export interface Reply<R> {
  result: R;
  buffers: DataView[];
}

type Pending = {
  resolve: (r: Reply<unknown>) => void;
  reject: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
};

interface ResponseMsg {
  kind: "response";
  id: number;
  ok: boolean;
  result?: unknown;
  error?: KernelErrorInfo;
}
interface EventMsg {
  kind: "event";
  name: string;
  data: unknown;
}

export class Dispatcher<M extends MethodMap, E extends EventMap = EventMap> {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners = new Map<keyof E, Set<(data: never, buffers: DataView[]) => void>>();
  private readonly onMessage = (msg: unknown, buffers: DataView[]) => this.receive(msg, buffers);

  constructor(
    private readonly model: MessageModel,
    private readonly timeoutMs = 0,
  ) {
    model.on("msg:custom", this.onMessage);
  }

  /** Call a kernel method; resolves with its result and buffers, rejects with KernelError. */
  request<K extends keyof M & string>(
    method: K,
    params: M[K][0],
    buffers: ArrayBuffer[] = [],
  ): Promise<Reply<M[K][1]>> {
    const id = this.nextId++;
    return new Promise<Reply<M[K][1]>>((resolve, reject) => {
      const p: Pending = { resolve: resolve as Pending["resolve"], reject };
      if (this.timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new Error(`request ${method} #${id} timed out after ${this.timeoutMs} ms`));
        }, this.timeoutMs);
      }
      this.pending.set(id, p);
      this.model.send({ kind: "request", id, method, params }, undefined, buffers);
    });
  }

  /** Call a method and return only its result. */
  async call<K extends keyof M & string>(method: K, params: M[K][0]): Promise<M[K][1]> {
    return (await this.request(method, params)).result;
  }

  /** Listen to a kernel event; returns the unsubscribe function. */
  on<K extends keyof E>(name: K, fn: (data: E[K], buffers: DataView[]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    const f = fn as (data: never, buffers: DataView[]) => void;
    set.add(f);
    return () => set!.delete(f);
  }

  /** Stop listening and fail every request still waiting. */
  dispose(): void {
    this.model.off("msg:custom", this.onMessage);
    for (const [, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new Error("widget closed"));
    }
    this.pending.clear();
    this.listeners.clear();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private receive(msg: unknown, buffers: DataView[] = []): void {
    if (!msg || typeof msg !== "object") return;
    const m = msg as ResponseMsg | EventMsg;
    if (m.kind === "response") {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (p.timer) clearTimeout(p.timer);
      if (m.ok) p.resolve({ result: m.result, buffers });
      else p.reject(new KernelError(m.error ?? { type: "KernelError", message: "unknown error" }));
    } else if (m.kind === "event") {
      for (const fn of this.listeners.get(m.name as keyof E) ?? []) fn(m.data as never, buffers);
    }
  }
}
