/**
 * Docked views fill their panel. In a notebook cell a view has a height of its own; docked in
 * a JupyterLab panel (sidecar's `.jupyterlab-sidecar`, what `widget.show()` and the Invoke
 * commands make) it should be exactly as tall as the panel, so toolbars stay visible and the
 * scrolling happens inside the view, not in the panel.
 */

export const DOCK_HOST = ".jupyterlab-sidecar";
export const CONTAINER_CLASS = "inb-cq";

/** Room below `top` in a host whose box ends at `bottom` (px, whole, never below `min`). */
export function roomBelow(top: number, bottom: number, margin = 6, min = 160): number {
  return Math.max(min, Math.floor(bottom - top - margin));
}

/**
 * Calls `onHeight(px)` now and whenever the panel holding `el` is resized, or `onHeight(null)`
 * when `el` is not in a docked panel. `el` may not be in the page yet when a view renders:
 * it is looked up again on the next frames. Returns the function that stops watching.
 */
export function watchDock(el: HTMLElement, onHeight: (px: number | null) => void): () => void {
  let ro: ResizeObserver | undefined;
  let frame = 0;
  let tries = 0;
  const attach = (): void => {
    if (!el.isConnected && tries++ < 120) {
      frame = requestAnimationFrame(attach);
      return;
    }
    const host = el.closest<HTMLElement>(DOCK_HOST);
    if (!host) {
      onHeight(null);
      return;
    }
    const update = (): void => {
      const h = host.getBoundingClientRect();
      onHeight(roomBelow(el.getBoundingClientRect().top - h.top + host.scrollTop, host.clientHeight));
    };
    ro = new ResizeObserver(update);
    ro.observe(host);
    update();
  };
  attach();
  return () => {
    cancelAnimationFrame(frame);
    ro?.disconnect();
  };
}

/**
 * Size `target` to its panel while docked (class `inb-docked`), and make `el` a size container
 * (class `inb-cq`, `container-type: inline-size`) so each view's CSS adapts to narrow panels
 * with `@container` rules.
 */
export function fillDock(el: HTMLElement, target: HTMLElement): () => void {
  el.classList.add(CONTAINER_CLASS);
  return watchDock(el, (px) => {
    target.classList.toggle("inb-docked", px !== null);
    target.style.height = px === null ? "" : `${px}px`;
  });
}
