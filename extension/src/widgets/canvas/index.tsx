/** anywidget entry of the canvas (invoke_nb.widgets.Canvas): React panel and konva stage
 * in separate divs (React's root replaces its children). */
import { createRoot } from "react-dom/client";
import { type MessageModel } from "../../shared/messages";
import { mountWidget } from "../../shared/mount";
import { CanvasEngine } from "./engine";
import { Panel, type ModelLike } from "./Panel";
import type { Events, Methods } from "./protocol";
import { CanvasStore, type Tool } from "./store";
import "./styles.css"; // bundled to static/<widget>.css, loaded once per page by anywidget (_css)

interface RenderProps {
  model: MessageModel & ModelLike;
  el: HTMLElement;
}

const KEYS: Record<string, Tool> = { v: "move", b: "brush", e: "eraser", c: "bbox", h: "pan" };

function render({ model, el }: RenderProps): () => void {
  return mountWidget<Methods, Events>(model, el, "inb-canvas", (root, rpc) => {
    root.tabIndex = 0;
    const panelDiv = document.createElement("div");
    panelDiv.className = "inb-cv-side";
    const stageDiv = document.createElement("div");
    stageDiv.className = "inb-cv-stage";
    root.append(panelDiv, stageDiv);
    const store = new CanvasStore(rpc);
    const engine = new CanvasEngine(stageDiv, store);
    (root as unknown as { inbCanvas: unknown }).inbCanvas = { store, engine }; // for tests and debugging
    const react = createRoot(panelDiv);
    react.render(<Panel store={store} engine={() => engine} model={model} />);
    store.load().then(
      () => engine.fit(),
      (e: Error) => store.fail(e.message),
    );
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t.closest("input, textarea, select")) return;
      const k = e.key.toLowerCase();
      if ((e.ctrlKey || e.metaKey) && k === "z") {
        e.preventDefault();
        if (e.shiftKey) store.redo();
        else store.undo();
      } else if ((e.ctrlKey || e.metaKey) && k === "y") {
        e.preventDefault();
        store.redo();
      } else if (!e.ctrlKey && !e.metaKey && KEYS[k]) {
        store.set("tool", KEYS[k]);
      } else if (k === "[" || k === "]") {
        store.set("brushSize", Math.max(2, Math.min(256, Math.round(store.brushSize * (k === "]" ? 1.25 : 0.8)))));
      }
    };
    root.addEventListener("keydown", onKey);
    return () => {
      root.removeEventListener("keydown", onKey);
      react.unmount();
      engine.dispose();
    };
  });
}

export default { render };
