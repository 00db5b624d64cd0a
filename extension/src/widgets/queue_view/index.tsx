/** anywidget entry of the queue view (invoke_nb.widgets.QueueView). */
import { createRoot } from "react-dom/client";
import { fillDock } from "../../shared/dock";
import { Dispatcher, type MessageModel } from "../../shared/messages";
import { App, type Events, type Methods } from "./App";
import "./styles.css"; // bundled to static/<widget>.css, loaded once per page by anywidget (_css)

function render({ model, el }: { model: MessageModel; el: HTMLElement }): () => void {
  const mount = document.createElement("div");
  mount.className = "inb-queue";
  el.append(mount);
  const undock = fillDock(el, mount); // docked in a panel: as tall as the panel
  const rpc = new Dispatcher<Methods, Events>(model);
  const root = createRoot(mount);
  root.render(<App rpc={rpc} />);
  return () => {
    undock();
    root.unmount();
    rpc.dispose();
    mount.remove();
  };
}

export default { render };
