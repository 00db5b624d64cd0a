/** The gallery model's traits as React state, and binary buffers as object URLs. */
import { useCallback, useEffect, useState } from "react";
import type { Filter } from "./protocol";

export type TraitName = keyof Filter | "selection" | "page_size" | "thumb_size" | "height" | "_first_page" | "_first_page_meta";

export interface ModelLike {
  get(name: string): unknown;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(name: string, cb: () => void): void;
  off(name: string, cb: () => void): void;
}

/** A trait as React state; the setter sends it to the kernel unless `save` is false (the next
 * save sends every change at once: one message for a change of two traits). */
export function useTrait<T>(model: ModelLike, name: TraitName): [T, (v: T, save?: boolean) => void] {
  const [value, setValue] = useState<T>(() => model.get(name) as T);
  useEffect(() => {
    const cb = () => setValue(model.get(name) as T);
    model.on(`change:${name}`, cb);
    return () => model.off(`change:${name}`, cb);
  }, [model, name]);
  const set = useCallback(
    (v: T, save = true) => {
      model.set(name, v);
      if (save) model.save_changes();
      setValue(v);
    },
    [model, name],
  );
  return [value, set];
}

/** An object URL for a message buffer (null when empty); revoke it when done. */
export function bufferUrl(buf: DataView | undefined, type: string): string | null {
  if (!buf || buf.byteLength === 0) return null;
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
  return URL.createObjectURL(new Blob([bytes], { type }));
}
