"""Hostile nesting in workflow and graph JSON gets a WorkflowError, and the CLI exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

import invoke_nb as inb
from invoke_nb.cli import main
from invoke_nb.graph.errors import WorkflowError

DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
DEEP_VALUE = '{"nodes": {"a": {"type": "integer", "value": ' + "[" * 500 + "]" * 500 + "}}}"


@pytest.mark.parametrize("case", ["array", "nodes", "value"])
def test_deep_json_is_a_workflow_error(case: str, tmp_path: Path) -> None:
    text = {"array": DEEP_ARRAY, "nodes": '{"nodes": ' + DEEP_ARRAY + "}", "value": DEEP_VALUE}[
        case
    ]
    if text.startswith("{"):  # a JSON string (other strings are paths)
        with pytest.raises(WorkflowError, match="nested"):
            inb.load_workflow(text)
    with pytest.raises(WorkflowError, match="nested"):
        inb.Graph.from_json(text)
    f = tmp_path / "deep.json"
    f.write_text(text)
    with pytest.raises(WorkflowError, match="nested"):
        inb.load_workflow(f)


def test_deep_dict_given_directly() -> None:
    data: dict = {}
    inner = data
    for _ in range(5_000):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(WorkflowError, match="nested"):
        inb.Graph.from_json({"nodes": data})


def test_cli_exits_2_on_deep_workflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "deep.json"
    f.write_text(DEEP_ARRAY)
    assert main(["--root", str(tmp_path / "studio"), "run", str(f)]) == 2
    assert "nested" in capsys.readouterr().err
