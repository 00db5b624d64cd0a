"""Style presets: prompt templates with a ``{prompt}`` placeholder (InvokeAI's feature).

``studio.presets`` wraps the catalog's ``style_presets`` table with lookup by name, and
import/export in InvokeAI's file shapes: CSV with ``name,prompt,negative_prompt`` columns,
or JSON, a list of ``{"name", "positive_prompt" | "prompt", "negative_prompt"}`` objects.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

__all__ = ["PresetError", "Presets", "apply_style"]

PLACEHOLDER = "{prompt}"


class PresetError(ValueError):
    """A preset file or lookup is wrong (names the file, row or preset)."""


def _fill(template: str, text: str) -> str:
    if not template:
        return text
    if PLACEHOLDER in template:
        return template.replace(PLACEHOLDER, text)
    return f"{text} {template}".strip() if text else template


def apply_style(preset: Any, prompt: str, negative: str = "") -> tuple[str, str]:
    """The prompt and negative prompt with a preset's templates applied."""
    return _fill(preset.positive_prompt, prompt), _fill(preset.negative_prompt, negative)


class Presets:
    """CRUD, lookup by name, import and export of style presets."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo

    def create(
        self, name: str, positive_prompt: str = "", negative_prompt: str = "", **kw: Any
    ) -> Any:
        return self.repo.create(
            name, positive_prompt=positive_prompt, negative_prompt=negative_prompt, **kw
        )

    def list(self) -> list[Any]:
        return self.repo.list()

    def find(self, name_or_id: str) -> Any:
        """A preset by id or by (unique) name."""
        for p in self.repo.list():
            if name_or_id in (p.id, p.name):
                return p
        names = ", ".join(sorted(p.name for p in self.repo.list())) or "none"
        raise PresetError(f"no style preset {name_or_id!r}; presets: {names}")

    def update(self, name_or_id: str, **changes: Any) -> Any:
        return self.repo.update(self.find(name_or_id).id, **changes)

    def delete(self, name_or_id: str) -> None:
        self.repo.delete(self.find(name_or_id).id)

    def import_file(self, path: str | Path) -> list[Any]:
        """Import presets from a CSV or JSON file; all rows are checked before any is added."""
        p = Path(path).expanduser()
        try:
            text = p.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise PresetError(f"cannot read style preset file {p}: {e}") from None
        rows = _parse_json(text, p) if p.suffix.lower() == ".json" else _parse_csv(text, p)
        return [self.create(r["name"], r["positive_prompt"], r["negative_prompt"]) for r in rows]

    def export(self, path: str | Path) -> Path:
        """Write every preset to ``path`` (CSV or JSON by its suffix)."""
        p = Path(path).expanduser()
        presets = self.repo.list()
        if p.suffix.lower() == ".json":
            data = [
                {
                    "name": x.name,
                    "positive_prompt": x.positive_prompt,
                    "negative_prompt": x.negative_prompt,
                }
                for x in presets
            ]
            p.write_text(json.dumps(data, indent=2))
        else:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["name", "prompt", "negative_prompt"])
            for x in presets:
                w.writerow([x.name, x.positive_prompt, x.negative_prompt])
            p.write_text(buf.getvalue())
        return p


def _row(obj: Any, where: str) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise PresetError(f"{where}: expected an object with name and prompt")
    name = obj.get("name")
    pos = obj.get("positive_prompt", obj.get("prompt", ""))
    neg = obj.get("negative_prompt", "")
    if not isinstance(name, str) or not name.strip():
        raise PresetError(f"{where}: missing name")
    if not isinstance(pos, str) or not isinstance(neg, str):
        raise PresetError(f"{where}: prompts must be text")
    return {"name": name.strip(), "positive_prompt": pos, "negative_prompt": neg}


def _parse_json(text: str, p: Path) -> list[dict[str, str]]:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise PresetError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(data, list):
        raise PresetError(f"{p}: expected a JSON list of presets")
    return [_row(obj, f"{p} item {i}") for i, obj in enumerate(data)]


def _parse_csv(text: str, p: Path) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "name" not in reader.fieldnames:
        raise PresetError(f"{p}: CSV needs a header with name, prompt, negative_prompt")
    return [_row(dict(r), f"{p} row {i + 2}") for i, r in enumerate(reader)]
