/** anywidget entry of the queue view (invoke_nb.widgets.QueueView). */
import { type MessageModel } from "../../shared/messages";
import { mountReact } from "../../shared/mount";
import { App, type Events, type Methods } from "./App";
import "./styles.css"; // bundled to static/<widget>.css, loaded once per page by anywidget (_css)

function render({ model, el }: { model: MessageModel; el: HTMLElement }): () => void {
  return mountReact<Methods, Events>(model, el, "inb-queue", (rpc) => <App rpc={rpc} />);
}

export default { render };
