/**
 * The invoke-nb JupyterLab plugin: "Invoke: open gallery / node editor / canvas / queue /
 * models" in the command palette, the launcher and an Invoke menu.
 *
 * A command runs `invoke_nb.studio_views.open_view(...)` in the active notebook's kernel;
 * Python makes the view and docks it with sidecar, so the panel is a view of the kernel's own
 * widget model (nothing widget-related is bundled here). The plugin gives those panels their
 * icons, and closes them when their notebook's kernel restarts or dies, so no broken panel is
 * left behind; the commands work again in the new kernel. Settings: the studio root used when
 * the kernel has no studio yet, and where panels dock by default.
 */
import {
  ILabShell,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin,
} from "@jupyterlab/application";
import { ICommandPalette, Notification } from "@jupyterlab/apputils";
import { ILauncher } from "@jupyterlab/launcher";
import { INotebookTracker, type NotebookPanel } from "@jupyterlab/notebook";
import { ISettingRegistry } from "@jupyterlab/settingregistry";
import type { Widget } from "@lumino/widgets";
import { ICONS } from "./icons";
import { type Area, commandId, openCode, readSettings, VIEWS, type View, viewOfTitle } from "./views";

const PLUGIN_ID = "invoke-nb:plugin";
const SIDECAR_CLASS = "jupyterlab-sidecar";
const PANEL_CLASS = "inb-panel";

/** Invoke panels -> the kernel id of the notebook that was active when each appeared. */
const owners = new WeakMap<Widget, string>();

function activate(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  palette: ICommandPalette | null,
  launcher: ILauncher | null,
  registry: ISettingRegistry | null,
  labShell: ILabShell | null,
): void {
  let settings = readSettings({});
  if (registry) {
    registry
      .load(PLUGIN_ID)
      .then((s) => {
        const update = (): void => {
          settings = readSettings(s.composite as Record<string, unknown>);
        };
        update();
        s.changed.connect(update);
      })
      .catch((e: unknown) => console.warn("invoke-nb: settings not loaded", e));
  }

  const kernelOf = (nb: NotebookPanel | null): string | undefined =>
    nb?.sessionContext.session?.kernel?.id;

  async function open(view: View, area: Area | undefined): Promise<string> {
    const nb = tracker.currentWidget;
    if (!nb) {
      Notification.warning(`Invoke: open a notebook first; the ${view.what} runs in its kernel`);
      return "no-notebook";
    }
    await nb.sessionContext.ready;
    const kernel = nb.sessionContext.session?.kernel;
    if (!kernel) {
      Notification.warning(`Invoke: ${nb.title.label} has no kernel; start one first`);
      return "no-kernel";
    }
    const code = openCode(view.kind, area ?? settings.defaultArea, settings.studioRoot);
    const reply = await kernel.requestExecute({ code, store_history: false, stop_on_error: false })
      .done;
    const content = reply.content;
    if (content.status === "error") {
      Notification.error(
        `Invoke: could not open the ${view.what} in ${nb.title.label}: ${content.ename}: ${content.evalue}`,
        { autoClose: false },
      );
      return "error";
    }
    return "ok";
  }

  VIEWS.forEach((view, rank) => {
    const id = commandId(view.kind);
    app.commands.addCommand(id, {
      label: `Invoke: open ${view.what}`,
      caption: `Dock the ${view.what} of the current notebook's kernel in a panel`,
      icon: ICONS[view.kind],
      isEnabled: () => tracker.currentWidget !== null,
      execute: (args) => open(view, args.area as Area | undefined),
    });
    palette?.addItem({ command: id, category: "Invoke" });
    launcher?.add({ command: id, category: "Invoke", rank });
  });

  if (!labShell) return;

  // Our panels: sidecar panels titled "Invoke: <view>". Give them an icon, a class and an
  // owner (the kernel of the active notebook when they appear: the code that docked them ran
  // there, from a cell or from one of the commands above).
  const adopt = (): void => {
    for (const area of ["main", "right"] as const) {
      for (const w of labShell.widgets(area)) {
        if (!w.hasClass(SIDECAR_CLASS) || owners.has(w)) continue;
        const view = viewOfTitle(w.title.label);
        const owner = kernelOf(tracker.currentWidget);
        if (!view || !owner) continue;
        owners.set(w, owner);
        w.addClass(PANEL_CLASS);
        w.node.dataset.inbView = view.kind;
        w.node.style.overflow = "auto";
        w.title.icon = ICONS[view.kind];
        w.title.caption = `${w.title.label} (kernel of ${tracker.currentWidget?.title.label})`;
      }
    }
  };
  labShell.layoutModified.connect(adopt);

  // A restarted or dead kernel has no widget models: close the panels it owned.
  const closeOwnedBy = (kernelId: string): void => {
    for (const area of ["main", "right"] as const) {
      for (const w of [...labShell.widgets(area)]) {
        if (owners.get(w) === kernelId && !w.isDisposed) w.dispose();
      }
    }
  };
  const watch = (nb: NotebookPanel): void => {
    const ctx = nb.sessionContext;
    let current = kernelOf(nb);
    ctx.statusChanged.connect((_, status) => {
      if ((status === "restarting" || status === "autorestarting" || status === "dead") && current) {
        closeOwnedBy(current);
      }
    });
    ctx.kernelChanged.connect(() => {
      if (current) closeOwnedBy(current);
      current = kernelOf(nb);
    });
    nb.disposed.connect(() => {
      if (current) closeOwnedBy(current);
    });
  };
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, nb) => watch(nb));
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: "Invoke commands and dock panels for invoke-nb's widgets.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILauncher, ISettingRegistry, ILabShell],
  activate,
};

export default plugin;
