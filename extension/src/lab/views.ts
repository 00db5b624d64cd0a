/**
 * What the Invoke commands open, and the kernel code that opens it.
 *
 * Pure (no JupyterLab imports) so vitest covers it. The code calls
 * `invoke_nb.studio_views.open_view` in the notebook's kernel; that makes the studio's view
 * and docks it with sidecar, so the panel belongs to that kernel's widget manager.
 */

export type Kind = "gallery" | "editor" | "canvas" | "queue" | "models";
export type Area = "right" | "main" | "split-right" | "split-bottom";

export interface View {
  kind: Kind;
  /** Command label after "Invoke: open ". */
  what: string;
  /** The panel title the Python side gives it (invoke_nb.widgets.panel.panel_title). */
  title: string;
}

export const TITLE_PREFIX = "Invoke: ";
export const AREAS: readonly Area[] = ["right", "main", "split-right", "split-bottom"];

export const VIEWS: readonly View[] = [
  { kind: "gallery", what: "gallery", title: "Gallery" },
  { kind: "editor", what: "node editor", title: "Node editor" },
  { kind: "canvas", what: "canvas", title: "Canvas" },
  { kind: "queue", what: "queue", title: "Queue" },
  { kind: "models", what: "models", title: "Models" },
];

export function commandId(kind: Kind): string {
  return `invoke-nb:open-${kind}`;
}

/** A Python string literal for any JS string (JSON string syntax is valid Python). */
export function pyString(s: string): string {
  return JSON.stringify(s);
}

/** The settings as the plugin reads them, with bad values replaced by the defaults. */
export function readSettings(raw: { studioRoot?: unknown; defaultArea?: unknown }): {
  studioRoot: string;
  defaultArea: Area;
} {
  const area = raw.defaultArea;
  return {
    studioRoot: typeof raw.studioRoot === "string" ? raw.studioRoot.trim() : "",
    defaultArea: AREAS.includes(area as Area) ? (area as Area) : "right",
  };
}

/** The code run in the kernel to open `kind` docked in `area` (a trailing `;` prints nothing). */
export function openCode(kind: Kind, area: Area, studioRoot: string): string {
  const root = studioRoot ? pyString(studioRoot) : "None";
  return [
    "from invoke_nb.studio_views import open_view as _inb_open_view",
    `_inb_open_view(${pyString(kind)}, area=${pyString(area)}, root=${root});`,
  ].join("\n");
}

/** The view a panel title names (`Invoke: Gallery` -> the gallery), if it is one of ours. */
export function viewOfTitle(label: string): View | undefined {
  if (!label.startsWith(TITLE_PREFIX)) return undefined;
  const rest = label.slice(TITLE_PREFIX.length);
  return VIEWS.find((v) => v.title === rest);
}
