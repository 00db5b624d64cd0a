/** anywidget entry of the model view (invoke_nb.widgets.ModelView). */
import { createRoot } from "react-dom/client";
import { Dispatcher, type MessageModel } from "../../shared/messages";
import { App, type Events, type Methods } from "./App";
import "./styles.css"; // bundled to static/<widget>.css, loaded once per page by anywidget (_css)

function render({ model, el }: { model: MessageModel; el: HTMLElement }): () => void {
  const mount = document.createElement("div");
  mount.className = "inb-models";
  el.append(mount);
  const rpc = new Dispatcher<Methods, Events>(model);
  const root = createRoot(mount);
  root.render(<App rpc={rpc} />);
  return () => {
    root.unmount();
    rpc.dispose();
    mount.remove();
  };
}

export default { render };
