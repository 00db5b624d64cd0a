/** Panel and command icons (inline SVG, themed through JupyterLab's jp-icon3 fill class). */
import { LabIcon } from "@jupyterlab/ui-components";
import type { Kind } from "./views";

const svg = (body: string): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">` +
  `<g class="jp-icon3" fill="#616161">${body}</g></svg>`;

export const ICONS: Record<Kind, LabIcon> = {
  gallery: new LabIcon({
    name: "invoke-nb:gallery",
    svgstr: svg(
      '<rect x="3" y="3" width="8" height="8" rx="1"/><rect x="13" y="3" width="8" height="8" rx="1"/>' +
        '<rect x="3" y="13" width="8" height="8" rx="1"/><rect x="13" y="13" width="8" height="8" rx="1"/>',
    ),
  }),
  editor: new LabIcon({
    name: "invoke-nb:editor",
    svgstr: svg(
      '<rect x="2" y="4" width="7" height="6" rx="1"/><rect x="15" y="14" width="7" height="6" rx="1"/>' +
        '<path d="M9 7h3v10h3v-1.5h0V18h-5V8.5H9z"/>',
    ),
  }),
  canvas: new LabIcon({
    name: "invoke-nb:canvas",
    svgstr: svg(
      '<path d="M20.7 4.1l-.8-.8a1 1 0 0 0-1.4 0L9 12.8l2.2 2.2 9.5-9.5a1 1 0 0 0 0-1.4z"/>' +
        '<path d="M7.5 14.3c-1.7 0-3 1.3-3 3 0 1.1-.9 2-2 2 .9 1.2 2.4 2 4 2 2.2 0 4-1.8 4-4 0-1.7-1.3-3-3-3z"/>',
    ),
  }),
  queue: new LabIcon({
    name: "invoke-nb:queue",
    svgstr: svg(
      '<rect x="3" y="4" width="18" height="3" rx="1"/><rect x="3" y="10.5" width="18" height="3" rx="1"/>' +
        '<rect x="3" y="17" width="11" height="3" rx="1"/>',
    ),
  }),
  models: new LabIcon({
    name: "invoke-nb:models",
    svgstr: svg(
      '<path d="M12 2l9 5v10l-9 5-9-5V7zm0 2.3L5.2 8 12 11.7 18.8 8zM5 9.7v6.1l6 3.3v-6.1zm14 0l-6 3.3v6.1l6-3.3z"/>',
    ),
  }),
};
