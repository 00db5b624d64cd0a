/** anywidget entry of the queue view (invoke_nb.widgets.QueueView). */
import { createRoot } from "react-dom/client";
import { Dispatcher, type MessageModel } from "../../shared/messages";
import { App, type Events, type Methods } from "./App";
import css from "./styles.css";

function render({ model, el }: { model: MessageModel; el: HTMLElement }): () => void {
  const style = document.createElement("style");
  style.textContent = css;
  const mount = document.createElement("div");
  mount.className = "inb-queue";
  el.append(style, mount);
  const rpc = new Dispatcher<Methods, Events>(model);
  const root = createRoot(mount);
  root.render(<App rpc={rpc} />);
  return () => {
    root.unmount();
    rpc.dispose();
    style.remove();
    mount.remove();
  };
}

export default { render };
