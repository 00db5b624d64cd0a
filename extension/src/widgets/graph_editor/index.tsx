/** anywidget entry of the graph editor (invoke_nb.widgets.GraphEditor). */
import { ReactFlowProvider } from "@xyflow/react";
import xyflowCss from "@xyflow/react/dist/style.css";
import { createRoot } from "react-dom/client";
import { Dispatcher, type MessageModel } from "../../shared/messages";
import { App, type ModelLike } from "./App";
import type { Events, Methods } from "./protocol";
import editorCss from "./styles.css";

interface RenderProps {
  model: MessageModel & ModelLike;
  el: HTMLElement;
}

function render({ model, el }: RenderProps): () => void {
  // React replaces every child of its root: styles and the root get their own elements.
  const style = document.createElement("style");
  style.textContent = xyflowCss + "\n" + editorCss;
  const mount = document.createElement("div");
  mount.className = "inb-graph-editor";
  el.append(style, mount);
  const rpc = new Dispatcher<Methods, Events>(model);
  const root = createRoot(mount);
  root.render(
    <ReactFlowProvider>
      <App model={model} rpc={rpc} />
    </ReactFlowProvider>,
  );
  return () => {
    root.unmount();
    rpc.dispose();
    style.remove();
    mount.remove();
  };
}

export default { render };
