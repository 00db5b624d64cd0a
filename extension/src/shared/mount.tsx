/**
 * One mount for every widget's anywidget entry (`render({model, el})`).
 *
 * Each widget gets a root div with its class, as tall as its dock panel when docked
 * (shared/dock), a request/event Dispatcher over the model, and whatever the widget puts in
 * the root; the function anywidget calls on removal undoes all of it, in reverse order.
 */
import type { ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { fillDock } from "./dock";
import { Dispatcher, type EventMap, type MessageModel, type MethodMap } from "./messages";

export interface MountOptions {
  /** Follow the dock panel's height (default true; the gallery sizes itself). */
  dock?: boolean;
}

/** Mount a widget: `setup` fills the root and returns its own cleanup (run first). */
export function mountWidget<M extends MethodMap, E extends EventMap>(
  model: MessageModel,
  el: HTMLElement,
  className: string,
  setup: (root: HTMLDivElement, rpc: Dispatcher<M, E>) => (() => void) | void,
  options: MountOptions = {},
): () => void {
  const root = document.createElement("div");
  root.className = className;
  el.append(root);
  const undock = options.dock === false ? () => undefined : fillDock(el, root);
  const rpc = new Dispatcher<M, E>(model);
  const teardown = setup(root, rpc);
  return () => {
    undock();
    teardown?.();
    rpc.dispose();
    root.remove();
  };
}

/** Mount a widget whose whole view is one React tree. */
export function mountReact<M extends MethodMap, E extends EventMap>(
  model: MessageModel,
  el: HTMLElement,
  className: string,
  view: (rpc: Dispatcher<M, E>, root: HTMLDivElement) => ReactNode,
  options: MountOptions = {},
): () => void {
  return mountWidget<M, E>(
    model,
    el,
    className,
    (root, rpc) => {
      const react = createRoot(root);
      react.render(view(rpc, root));
      return () => react.unmount();
    },
    options,
  );
}
