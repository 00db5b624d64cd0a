"""The ``invoke-nb`` command: demo, headless workflow runs, models, image import, lab.

Exit codes: 0 success, 1 the work failed (a node error, a failed download), 2 bad usage or
input (missing file, unknown option, malformed workflow), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

DEMO_MODEL = "tiny-sd1-demo"


class UsageError(Exception):
    """Bad input from the command line (exit code 2)."""


def _studio(args: argparse.Namespace) -> Any:
    from invoke_nb.studio import Studio

    return Studio(args.root)


def _parse_set(items: Sequence[str]) -> list[tuple[str, str, Any]]:
    out = []
    for item in items:
        key, eq, raw = item.partition("=")
        node_id, dot, field = key.rpartition(".")
        if not eq or not dot or not node_id or not field:
            raise UsageError(f"--set {item!r}: expected node_id.field=value")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # plain text needs no quotes
        out.append((node_id, field, value))
    return out


# -- commands --------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """Build the tiny demo model if needed; run txt2img, img2img and inpaint."""
    from PIL import Image

    with _studio(args) as studio:
        model = _demo_model(studio)
        print(f"studio: {studio.root}")
        print(f"model:  {model.name} ({model.base}, {model.type}, {model.format})")
        size = {"width": args.size, "height": args.size, "steps": args.steps}
        a = studio.txt2img(args.prompt, model=model.name, seed=args.seed, progress=False, **size)
        print(f"txt2img -> {a.path}")
        b = studio.img2img(
            a,
            args.prompt,
            model=model.name,
            strength=0.6,
            seed=args.seed + 1,
            steps=args.steps,
            progress=False,
        )
        print(f"img2img -> {b.path}")
        mask = Image.new("L", a.pil.size, 255)
        w, h = a.pil.size
        mask.paste(0, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
        c = studio.inpaint(
            a,
            mask,
            args.prompt,
            model=model.name,
            seed=args.seed + 2,
            steps=args.steps,
            progress=False,
        )
        print(f"inpaint -> {c.path}")
        total = studio.sql("select count(*) from images where not is_intermediate").fetchall()[0][0]
        print(f"{total} images in the catalog: {studio.catalog.path}")
        print(studio.stats())
    return 0


def _demo_model(studio: Any) -> Any:
    mains = studio.models.list(type="main")
    if mains:
        return mains[0]
    from invoke_nb.testing.tiny_models import make_sd1

    print("no model installed: building a tiny random-weight SD1 model (offline, ~30 MB)")
    folder = make_sd1(studio.root / "models" / DEMO_MODEL)
    return studio.models.install(str(folder), name=DEMO_MODEL, in_place=True)


def cmd_run(args: argparse.Namespace) -> int:
    """Run a workflow file headless; images go to the catalog."""
    from invoke_nb.graph.errors import GraphError
    from invoke_nb.graph.workflow import load_workflow

    path = Path(args.workflow)
    if not path.is_file():
        raise UsageError(f"workflow file not found: {path}")
    try:
        g = load_workflow(path)
    except (GraphError, ValueError) as e:
        raise UsageError(f"{path}: {e}") from None
    for node_id, field, value in _parse_set(args.set or []):
        g.set(node_id, **{field: value})
    with _studio(args) as studio:
        result = studio.run(g, progress=not args.quiet)
        for img in result.images:
            print(img.path)
        if not result.images:
            print(
                f"done: {len(result.executed)} nodes executed, {len(result.cached)} cached, no images"
            )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Install, list and remove models."""
    with _studio(args) as studio:
        if args.models_cmd == "install":
            rec = studio.models.install(
                args.source, name=args.name, in_place=args.in_place, allow_unsafe=args.allow_unsafe
            )
            print(f"{rec.key}  {rec.name}  {rec.base}  {rec.type}  {rec.format}")
        elif args.models_cmd == "list":
            rows = studio.models.list()
            if args.json:
                print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
            else:
                for r in rows:
                    print(f"{r.key}  {r.name:<32} {r.base:<12} {r.type:<12} {r.format}")
                if not rows:
                    print("no models installed")
        elif args.models_cmd == "remove":
            rec = studio.models.remove(studio.models.get(args.model).key)
            print(f"removed {rec.name}")
        elif args.models_cmd == "scan":
            print(studio.models.scan_folder(args.folder))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import images (with their metadata) from an InvokeAI, ComfyUI or A1111 folder."""
    folder = Path(args.path)
    if not folder.is_dir():
        raise UsageError(f"not a folder: {folder}")
    from invoke_nb.interchange.importer import import_folder

    with _studio(args) as studio:
        results = import_folder(studio.catalog.images, folder)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
            if r.status == "error":
                print(f"error: {r.path}: {r.reason}", file=sys.stderr)
        print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no images found")
    return 0


def cmd_import_invokeai(args: argparse.Namespace) -> int:
    """Import a whole InvokeAI root: images, boards, workflows, style presets, models."""
    from invoke_nb.interchange.invokeai import InvokeAILibraryError

    with _studio(args) as studio:
        try:
            report = studio.import_invokeai(
                args.invokeai_root,
                files=args.files,
                models=not args.no_models,
                batch_size=args.batch_size,
                progress=not args.quiet,
                # this process ends with the command: build the search index before it does
                # (or leave it to the next kernel that opens the catalog)
                index=args.index == "now",
            )
        except InvokeAILibraryError as e:
            raise UsageError(str(e)) from None
        print(report)
        if args.skipped:
            for s in report.skipped:
                print(f"skipped {s.kind} {s.name}: {s.reason}")
        if report.no_image_files:
            n = report.skipped_reasons["image", "missing file"]
            first = next((s.reason for s in report.skipped if s.kind == "image"), "")
            print(
                f"invoke-nb: error: no image was imported: the files of all {n:,} images are "
                f"missing ({first}). Point ROOT at the InvokeAI root that holds outputs/images, "
                "or pass --files none to import the records without their files.",
                file=sys.stderr,
            )
            return 1
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    """Start JupyterLab on the quickstart notebook (``--dry-run``: print the command only)."""
    import importlib.util
    import shlex
    import subprocess

    nb = Path(__file__).resolve().parents[2] / "notebooks" / "01-quickstart.ipynb"
    cmd = [sys.executable, "-m", "jupyter", "lab"]
    if nb.exists():
        cmd.append(str(nb))
    cmd += args.lab_args
    env = dict(os.environ)
    if args.root:
        env["INVOKE_NB_ROOT"] = str(args.root)
    if args.dry_run:
        root = f"INVOKE_NB_ROOT={shlex.quote(env['INVOKE_NB_ROOT'])} " if args.root else ""
        print(root + shlex.join(cmd))
        return 0
    try:
        missing = importlib.util.find_spec("jupyterlab") is None
    except (ImportError, ValueError):  # a broken or blocked install
        missing = True
    if missing:
        raise UsageError(
            f"JupyterLab is not installed for {sys.executable}: "
            "pip install 'invoke-nb[lab]' (the kernel package does not need it)"
        )
    return subprocess.call(cmd, env=env)


# -- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="invoke-nb",
        description="InvokeAI's node-graph image generation inside Jupyter. "
        "The studio root defaults to $INVOKE_NB_ROOT or ~/invoke-nb.",
    )
    p.add_argument("--root", help="studio root folder (catalog, images, models)")
    # every command also takes --root after its name; given there, it wins
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root", default=argparse.SUPPRESS, help="studio root folder (catalog, images, models)"
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    d = sub.add_parser(
        "demo",
        parents=[common],
        help="build a tiny model if none is installed; run txt2img, img2img, inpaint",
    )
    d.add_argument("--prompt", default="a lighthouse on a cliff at dusk")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--steps", type=int, default=8)
    d.add_argument("--size", type=int, default=128, help="width and height (multiple of 8)")
    d.set_defaults(fn=cmd_demo)

    r = sub.add_parser(
        "run", parents=[common], help="run a workflow file (ours or InvokeAI's) headless"
    )
    r.add_argument("workflow")
    r.add_argument(
        "--set",
        action="append",
        metavar="NODE.FIELD=VALUE",
        help="set an input (JSON or text); repeatable",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(fn=cmd_run)

    m = sub.add_parser("models", parents=[common], help="install, list, remove or scan models")
    msub = m.add_subparsers(dest="models_cmd", required=True, metavar="ACTION")
    mi = msub.add_parser(
        "install", parents=[common], help="install from a path, URL or Hugging Face repo id"
    )
    mi.add_argument("source")
    mi.add_argument("--name")
    mi.add_argument("--in-place", action="store_true", help="register without copying")
    mi.add_argument(
        "--allow-unsafe", action="store_true", help="allow pickle checkpoints (scanned)"
    )
    ml = msub.add_parser("list", parents=[common], help="list installed models")
    ml.add_argument("--json", action="store_true")
    mr = msub.add_parser(
        "remove", parents=[common], help="remove a model (files deleted only when owned)"
    )
    mr.add_argument("model", help="name or key")
    ms = msub.add_parser("scan", parents=[common], help="install every model in a folder")
    ms.add_argument("folder")
    m.set_defaults(fn=cmd_models)

    i = sub.add_parser(
        "import",
        parents=[common],
        help="import images from an InvokeAI/ComfyUI/A1111 output folder",
    )
    i.add_argument("path")
    i.set_defaults(fn=cmd_import)

    ia = sub.add_parser(
        "import-invokeai",
        parents=[common],
        help="import an InvokeAI root: images, boards, workflows, style presets, models",
    )
    ia.add_argument("invokeai_root", metavar="ROOT", help="the InvokeAI root folder")
    ia.add_argument(
        "--files",
        choices=("link", "copy", "none"),
        default="link",
        help="image files: hard-link (default; copies across file systems), copy, or none",
    )
    ia.add_argument("--no-models", action="store_true", help="do not register its models")
    ia.add_argument(
        "--index",
        choices=("now", "later"),
        default="now",
        help="search index of the new images: build it before exiting (default), or leave it "
        "to the next kernel that opens the catalog (searches are exact meanwhile, but scan)",
    )
    ia.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="image rows per batch (default: one DuckDB row group)",
    )
    ia.add_argument("--skipped", action="store_true", help="list every skipped item")
    ia.add_argument("--quiet", action="store_true", help="no progress bar")
    ia.set_defaults(fn=cmd_import_invokeai)

    lab = sub.add_parser(
        "lab", parents=[common], help="start JupyterLab with the quickstart notebook"
    )
    lab.add_argument(
        "--dry-run", action="store_true", help="print the command line instead of running it"
    )
    lab.add_argument("lab_args", nargs=argparse.REMAINDER, help="arguments passed to jupyter lab")
    lab.set_defaults(fn=cmd_lab)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``invoke-nb`` command."""
    parser = build_parser()
    # `lab` passes unknown options on to JupyterLab (`invoke-nb lab --port 9999`)
    args, extra = parser.parse_known_args(argv)
    if args.cmd == "lab":
        rest = [*extra, *args.lab_args]
        if "--dry-run" in rest:  # wherever it stood among JupyterLab's options
            rest.remove("--dry-run")
            args.dry_run = True
        args.lab_args = rest[1:] if rest[:1] == ["--"] else rest
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from invoke_nb.graph.errors import GraphError, NodeError
    from invoke_nb.nodes.context import Cancelled

    try:
        return int(args.fn(args) or 0)
    except UsageError as e:
        print(f"invoke-nb: error: {e}", file=sys.stderr)
        return 2
    except GraphError as e:
        print(f"invoke-nb: error: {e}", file=sys.stderr)
        return 2
    except NodeError as e:
        print(f"invoke-nb: {e}", file=sys.stderr)
        return 1
    except (LookupError, ValueError, OSError) as e:
        print(f"invoke-nb: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("invoke-nb: interrupted", file=sys.stderr)
        return 130
    except Cancelled as e:  # Ctrl-C during a run: the studio cancelled the item first
        print(f"invoke-nb: {e}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
