/** anywidget entry of the gallery (invoke_nb.widgets.Gallery). */
import { type MessageModel } from "../../shared/messages";
import { mountReact } from "../../shared/mount";
import { App, type ModelLike } from "./App";
import type { Events, Methods } from "./protocol";
import "./styles.css"; // bundled to static/<widget>.css, loaded once per page by anywidget (_css)

function render({ model, el }: { model: MessageModel & ModelLike; el: HTMLElement }): () => void {
  return mountReact<Methods, Events>(
    model,
    el,
    "inb-gallery",
    (rpc, root) => <App model={model} rpc={rpc} root={root} />,
    { dock: false },
  );
}

export default { render };
