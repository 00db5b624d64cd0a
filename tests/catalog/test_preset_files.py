"""Style preset files round-trip in InvokeAI's shapes: CSV with a ``name,prompt,negative_prompt``
header (what InvokeAI's export writes) and JSON, a list of objects with ``name``, ``prompt`` or
``positive_prompt``, and ``negative_prompt`` (what its import reads). Awkward text (commas,
quotes, line breaks, non-ASCII, the ``{prompt}`` placeholder) survives; a bad file is refused
whole, naming the file and row."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoke_nb.catalog import Catalog
from invoke_nb.presets import PresetError, Presets

PRESETS = [
    ("Cinematic", "{prompt}, cinematic still, 35mm", "cartoon, 3d"),
    ('Quote "and" comma, here', 'a "quoted" {prompt}', ""),
    ("Zeilen\numbruch ünïcode", "line one\nline two {prompt}", "négatif, 漢字"),
    ("no placeholder", "watercolor", "photo"),
]


@pytest.fixture
def presets(tmp_path: Path) -> Iterator[Presets]:
    cat = Catalog(tmp_path / "a")
    p = Presets(cat.style_presets)
    for name, pos, neg in PRESETS:
        p.create(name, pos, neg)
    yield p
    cat.close()


@pytest.fixture
def other(tmp_path: Path) -> Iterator[Presets]:
    cat = Catalog(tmp_path / "b")
    yield Presets(cat.style_presets)
    cat.close()


def triples(p: Presets) -> list[tuple[str, str, str]]:
    return sorted((x.name, x.positive_prompt, x.negative_prompt) for x in p.list())


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_export_then_import_gives_the_same_presets(
    presets: Presets, other: Presets, tmp_path: Path, suffix: str
) -> None:
    path = presets.export(tmp_path / f"presets{suffix}")
    added = other.import_file(path)
    assert len(added) == len(PRESETS)
    assert triples(other) == triples(presets) == sorted(PRESETS)
    # and again from the re-exported file: a fixed point
    again = other.export(tmp_path / f"again{suffix}")
    assert _rows(again) == _rows(path)


def _rows(path: Path) -> list:
    if path.suffix == ".json":
        return sorted(json.loads(path.read_text()), key=lambda r: r["name"])
    with path.open(newline="", encoding="utf-8") as f:
        return sorted(csv.reader(f))


def test_csv_export_is_invokeais_shape(presets: Presets, tmp_path: Path) -> None:
    path = presets.export(tmp_path / "prompt_templates.csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "prompt", "negative_prompt"]
    assert sorted(tuple(r) for r in rows[1:]) == sorted(PRESETS)


def test_json_export_is_a_list_of_objects(presets: Presets, tmp_path: Path) -> None:
    data = json.loads(presets.export(tmp_path / "p.json").read_text())
    assert isinstance(data, list) and len(data) == len(PRESETS)
    assert {tuple(sorted(d)) for d in data} == {("name", "negative_prompt", "positive_prompt")}


def test_files_written_as_invokeai_writes_them_import(other: Presets, tmp_path: Path) -> None:
    csv_file = tmp_path / "from-invokeai.csv"
    with csv_file.open("w", newline="", encoding="utf-8") as f:  # csv.writer: \r\n rows
        w = csv.writer(f)
        w.writerow(["name", "prompt", "negative_prompt"])
        w.writerow(["Anime", "{prompt}, anime, cel shading", "photo, realistic"])
        w.writerow(["Empty negative", "{prompt} oil painting", ""])
    json_file = tmp_path / "from-invokeai.json"
    json_file.write_text(
        json.dumps(
            [
                {"name": "Noir", "prompt": "{prompt}, film noir", "negative_prompt": "colour"},
                {"name": "Pos key", "positive_prompt": "{prompt}, sketch"},  # negative optional
            ]
        )
    )
    other.import_file(csv_file)
    other.import_file(json_file)
    assert triples(other) == [
        ("Anime", "{prompt}, anime, cel shading", "photo, realistic"),
        ("Empty negative", "{prompt} oil painting", ""),
        ("Noir", "{prompt}, film noir", "colour"),
        ("Pos key", "{prompt}, sketch", ""),
    ]


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("bad.json", "[{not json", r"bad\.json: not valid JSON"),
        ("obj.json", '{"name": "x"}', r"obj\.json: expected a JSON list"),
        (
            "noname.json",
            '[{"name": "ok", "prompt": "a"}, {"prompt": "b"}]',
            r"item 1: missing name",
        ),
        ("types.json", '[{"name": "x", "prompt": 3}]', r"item 0: prompts must be text"),
        ("header.csv", "title,prompt\nx,y\n", r"header\.csv: CSV needs a header"),
        ("row.csv", "name,prompt,negative_prompt\nok,a,b\n,c,d\n", r"row\.csv row 3: missing name"),
    ],
)
def test_bad_files_are_refused_whole_naming_file_and_row(
    other: Presets, tmp_path: Path, name: str, text: str, match: str
) -> None:
    other.create("kept", "{prompt}")
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PresetError, match=match):
        other.import_file(path)
    assert [x.name for x in other.list()] == ["kept"]  # nothing half-imported


def test_missing_file_is_named(other: Presets, tmp_path: Path) -> None:
    with pytest.raises(PresetError, match=r"cannot read style preset file .*gone\.csv"):
        other.import_file(tmp_path / "gone.csv")
