"""Front-end lock-step: fixtures generated from Python, then the vitest suite run on them.

The first tests compare ``extension/tests/fixtures/`` with what the Python functions give
now; the last test runs vitest, whose tests read those fixtures. Both therefore judge the
same cases in one pytest run. A stale fixture (e.g. after a node type was added) fails with
the command that regenerates it, ``make -C extension fixtures``, which sets
``INVOKE_NB_UPDATE_FIXTURES=1``: only then are files in the source tree rewritten, and
never where ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings

import pyarrow as pa
import pytest

from invoke_nb.widgets import records_to_ipc

from .fixtures import FIXTURES, arrow_records, compat_cases, connection_cases

EXTENSION = FIXTURES.parents[1]


def _updating() -> bool:
    return os.environ.get("INVOKE_NB_UPDATE_FIXTURES") == "1" and not os.environ.get("CI")


def _sync(files: dict[str, bytes]) -> None:
    stale = [
        name
        for name, data in files.items()
        if not (FIXTURES / name).exists() or (FIXTURES / name).read_bytes() != data
    ]
    if not stale:
        return
    if not _updating():
        pytest.fail(
            f"front-end fixtures {stale} in {FIXTURES} are stale (the vitest suite would judge "
            "old cases): run `make -C extension fixtures` and commit the result"
        )
    for name in stale:
        path = FIXTURES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    warnings.warn(
        f"regenerated front-end fixtures {stale} in {FIXTURES}; commit them", stacklevel=2
    )


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def test_compat_fixture_matches_python() -> None:
    cases = compat_cases()
    # the fixture must exercise both answers, unions, lists, enums and classes
    flat = [v for row in cases["matrix"] for v in row]
    assert 0 < sum(flat) < len(flat)
    kinds = {d["kind"] for d in cases["descriptors"]}
    assert {"union", "list", "enum", "class", "any", "int", "float", "str"} <= kinds
    _sync({"compat_cases.json": _json(cases)})


def test_connection_fixture_matches_python() -> None:
    data = connection_cases()
    errors = {c["error"] for c in data["cases"]}
    assert {
        "",
        "TypeMismatchError",
        "CycleError",
        "DuplicateInputError",
        "ConnectionModeError",
    } <= errors
    _sync({"connection_cases.json": _json(data)})


def test_arrow_fixture_round_trips() -> None:
    rows, schema = arrow_records()
    ipc = records_to_ipc(rows, schema)
    table = pa.ipc.open_stream(ipc).read_all()
    assert table.to_pylist() == rows
    assert table.schema == schema
    committed = FIXTURES / "records.arrow"
    # bytes may differ between pyarrow releases; only the content has to match
    if not committed.exists() or pa.ipc.open_stream(committed.read_bytes()).read_all() != table:
        _sync({"records.arrow": ipc})
    _sync({"records.json": _json({"rows": rows})})


def test_records_to_ipc_refuses_empty_without_schema() -> None:
    with pytest.raises(ValueError, match="explicit schema"):
        records_to_ipc([])
    _rows, schema = arrow_records()
    assert pa.ipc.open_stream(records_to_ipc([], schema)).read_all().num_rows == 0


@pytest.mark.skipif(shutil.which("npx") is None, reason="node/npx not installed")
def test_vitest_suite_passes() -> None:
    if not (EXTENSION / "node_modules").is_dir():
        pytest.fail("extension/node_modules is missing: run `make frontend` first")
    proc = subprocess.run(
        ["npx", "vitest", "run", "--reporter=dot"],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


@pytest.mark.skipif(shutil.which("npx") is None, reason="node/npx not installed")
def test_typescript_typechecks() -> None:
    if not (EXTENSION / "node_modules").is_dir():
        pytest.fail("extension/node_modules is missing: run `make frontend` first")
    proc = subprocess.run(
        ["npx", "tsc", "--noEmit", "-p", "."],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
