/** anywidget entry of the graph editor (invoke_nb.widgets.GraphEditor). */
import { ReactFlowProvider } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { createRoot } from "react-dom/client";
import { fillDock } from "../../shared/dock";
import { Dispatcher, type MessageModel } from "../../shared/messages";
import { App, type ModelLike } from "./App";
import type { Events, Methods } from "./protocol";
import "./styles.css"; // bundled to static/<widget>.css, loaded once per page by anywidget (_css)

interface RenderProps {
  model: MessageModel & ModelLike;
  el: HTMLElement;
}

function render({ model, el }: RenderProps): () => void {
  const mount = document.createElement("div");
  mount.className = "inb-graph-editor";
  el.append(mount);
  const undock = fillDock(el, mount); // docked in a panel: as tall as the panel
  const rpc = new Dispatcher<Methods, Events>(model);
  const root = createRoot(mount);
  root.render(
    <ReactFlowProvider>
      <App model={model} rpc={rpc} />
    </ReactFlowProvider>,
  );
  return () => {
    undock();
    root.unmount();
    rpc.dispose();
    mount.remove();
  };
}

export default { render };
