"""InvokeAI's default workflows, exported by us, checked by InvokeAI 6.11.1 itself.

    PYTHONPATH=src .venv/bin/python -m benchmarks.invokeai_workflow_roundtrip \
        [--invokeai-python /work/ext/invokeai-6.11.1/bin/python]

Every workflow of ``shared/fixtures/invokeai-workflows`` whose node types are registered
here is imported, exported with ``Workflow.save(..., invokeai=True)`` and handed to a
subprocess in InvokeAI's venv, which validates each file with InvokeAI's ``WorkflowValidator``
and builds every node from its exported input values with InvokeAI's own invocation classes
(unknown inputs, wrong types or out-of-range values fail there). Prints one line per workflow.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

_CHECK = r"""
import json, sys
import importlib
import invokeai.app.invocations as pkg
from invokeai.app.invocations.baseinvocation import InvocationRegistry
from invokeai.app.services.workflow_records.workflow_records_common import WorkflowValidator
for stem in pkg.__all__:
    importlib.import_module(f"invokeai.app.invocations.{stem}")
for path in sys.argv[1:]:
    data = json.load(open(path))
    problems = []
    try:
        WorkflowValidator.validate_python(data)
    except Exception as e:
        problems.append(f"workflow model: {e}")
    for n in data["nodes"]:
        d = n["data"]
        if d["type"] in ("iterate", "collect"):
            continue
        cls = InvocationRegistry.get_invocation_for_type(d["type"])
        if cls is None:
            problems.append(f"{d['id']}: unknown type {d['type']}")
            continue
        values = {k: v["value"] for k, v in d["inputs"].items() if "value" in v}
        unknown = set(d["inputs"]) - set(cls.model_fields)
        if unknown:
            problems.append(f"{d['id']} ({d['type']}): unknown inputs {sorted(unknown)}")
        try:
            cls.model_validate({"id": d["id"], **values})
        except Exception as e:
            problems.append(f"{d['id']} ({d['type']}): {str(e)[:300]}")
    print(json.dumps({"path": path, "problems": problems}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--invokeai-python", default="/work/ext/invokeai-6.11.1/bin/python")
    ap.add_argument("--workflows", default=None, help="folder of InvokeAI workflow files")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from invoke_nb.graph.errors import UnsupportedNodeTypesError
    from invoke_nb.graph.workflow import read_workflow
    from shared_paths import INVOKEAI_WORKFLOWS

    folder = Path(args.workflows) if args.workflows else INVOKEAI_WORKFLOWS
    out_dir = Path(tempfile.mkdtemp(prefix="wf-export-"))
    exported: dict[str, str] = {}
    originals: dict[str, str] = {}  # the same check on InvokeAI's own file, for comparison
    for path in sorted(folder.glob("*.json")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wf = read_workflow(path)
        except UnsupportedNodeTypesError as e:
            print(f"skip  {path.stem}: needs {', '.join(e.missing)}")
            continue
        target = out_dir / path.name
        wf.save(target, invokeai=True)
        back = read_workflow(target)
        same = {
            k: (v.type, v.values) for k, v in back.graph.nodes.items()
        }.keys() == wf.graph.nodes.keys() and back.graph.edges == wf.graph.edges
        exported[str(target)] = f"{path.stem} (imports back: {'same graph' if same else 'DIFFERS'})"
        originals[str(target)] = str(path)
    if not exported:
        print("no workflow imports here")
        return
    proc = subprocess.run(
        [args.invokeai_python, "-c", _CHECK, *exported, *originals.values()],
        capture_output=True,
        text=True,
        check=False,
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not results:
        print(proc.stderr[-2000:])
        raise SystemExit("InvokeAI's check did not run")
    by_path = {r["path"]: r["problems"] for r in results}
    results = [r for r in results if r["path"] in exported]
    bad = 0
    for r in results:
        name = exported[r["path"]]
        theirs = {p.split(": ", 1)[-1] for p in by_path.get(originals[r["path"]], [])}
        r["problems"] = [p for p in r["problems"] if p.split(": ", 1)[-1] not in theirs]
        if theirs:
            print(
                f"note  {name}: InvokeAI's own file fails the same way: {sorted(theirs)[0][:120]}"
            )
        if r["problems"]:
            bad += 1
            print(f"FAIL  {name}")
            for p in r["problems"]:
                print(f"        {p}")
        else:
            print(f"ok    {name}: valid for InvokeAI 6.11.1's workflow model and node classes")
    print(f"{len(results) - bad} of {len(results)} exported workflows accepted by InvokeAI")


if __name__ == "__main__":
    main()
