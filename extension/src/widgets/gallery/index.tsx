/** anywidget entry of the gallery (invoke_nb.widgets.Gallery). */
import { createRoot } from "react-dom/client";
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
  mount.className = "inb-gallery";
  el.append(mount);
  const rpc = new Dispatcher<Methods, Events>(model);
  const root = createRoot(mount);
  root.render(<App model={model} rpc={rpc} root={mount} />);
  return () => {
    root.unmount();
    rpc.dispose();
    mount.remove();
  };
}

export default { render };
