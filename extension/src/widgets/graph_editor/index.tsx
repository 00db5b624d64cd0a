/** anywidget entry of the graph editor (invoke_nb.widgets.GraphEditor). */
import { ReactFlowProvider } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { type MessageModel } from "../../shared/messages";
import { mountReact } from "../../shared/mount";
import { App, type ModelLike } from "./App";
import type { Events, Methods } from "./protocol";
import "./styles.css"; // bundled to static/<widget>.css, loaded once per page by anywidget (_css)

function render({ model, el }: { model: MessageModel & ModelLike; el: HTMLElement }): () => void {
  return mountReact<Methods, Events>(model, el, "inb-graph-editor", (rpc) => (
    <ReactFlowProvider>
      <App model={model} rpc={rpc} />
    </ReactFlowProvider>
  ));
}

export default { render };
