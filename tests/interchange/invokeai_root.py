"""A fake InvokeAI root (its real SQLite schema, PNGs with real chunks) and the reference
PNG fixtures, shared by the interchange tests."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

FIXTURES = Path(__file__).parents[1] / "fixtures" / "invokeai"
REFERENCE_PNGS = sorted(FIXTURES.glob("invokeai-*-seed42.png"))
SCHEMA_6 = FIXTURES / "schema-v33-invokeai-6.14.2.sql"
SCHEMA_4 = FIXTURES / "schema-v9-invokeai-4.x.sql"


@dataclass
class FakeInvokeAIRoot:
    """An InvokeAI root written by a test: its database and files, and what went in."""

    root: Path
    schema: Path
    db: sqlite3.Connection
    images: list[str] = field(default_factory=list)

    @property
    def images_dir(self) -> Path:
        return self.root / "outputs" / "images"

    def add_image(
        self,
        png: Path | None = None,
        *,
        name: str | None = None,
        metadata: dict | None = None,
        starred: bool = False,
        intermediate: bool = False,
        created_at: str = "2024-05-01 10:00:00.000",
        board_id: str | None = None,
        write_file: bool = True,
        thumbnail: bool = True,
        category: str = "general",
    ) -> str:
        """One image row (and, unless told not to, its PNG and thumbnail)."""
        name = name or f"{uuid.uuid4()}.png"
        if png is not None and metadata is None:
            from PIL import Image

            with Image.open(png) as im:
                metadata = json.loads(im.text["invokeai_metadata"])
        cols = {
            "image_name": name,
            "image_origin": "internal",
            "image_category": category,
            "width": 64,
            "height": 64,
            "session_id": "s1",
            "node_id": "l2i",
            "metadata": json.dumps(metadata) if metadata is not None else None,
            "is_intermediate": intermediate,
            "created_at": created_at,
            "updated_at": created_at,
            "starred": starred,
            "has_workflow": False,
        }
        marks = ", ".join("?" for _ in cols)
        self.db.execute(
            f"INSERT INTO images ({', '.join(cols)}) VALUES ({marks})", list(cols.values())
        )
        if board_id is not None:
            self.db.execute(
                "INSERT INTO board_images (board_id, image_name) VALUES (?, ?)", [board_id, name]
            )
        self.db.commit()
        if write_file:
            self.images_dir.mkdir(parents=True, exist_ok=True)
            dest = self.images_dir / name
            if png is not None:
                shutil.copyfile(png, dest)
            else:
                from PIL import Image

                Image.new("RGB", (64, 64), (10, 20, 30)).save(dest)
            if thumbnail:
                from PIL import Image

                (self.images_dir / "thumbnails").mkdir(exist_ok=True)
                with Image.open(dest) as im:
                    im.convert("RGB").resize((32, 32)).save(
                        self.images_dir / "thumbnails" / (Path(name).stem + ".webp")
                    )
        self.images.append(name)
        return name

    def add_board(self, name: str, *, archived: bool | None = None) -> str:
        bid = str(uuid.uuid4())
        if archived is None:
            self.db.execute(
                "INSERT INTO boards (board_id, board_name, created_at) VALUES (?, ?, ?)",
                [bid, name, "2024-04-01 09:00:00.000"],
            )
        else:
            self.db.execute(
                "INSERT INTO boards (board_id, board_name, archived) VALUES (?, ?, ?)",
                [bid, name, archived],
            )
        self.db.commit()
        return bid

    def add_workflow(self, workflow: dict, category: str = "user") -> str:
        wid = workflow.get("id") or str(uuid.uuid4())
        wf = {**workflow, "id": wid, "meta": {**workflow.get("meta", {}), "category": category}}
        self.db.execute(
            "INSERT INTO workflow_library (workflow_id, workflow) VALUES (?, ?)",
            [wid, json.dumps(wf)],
        )
        self.db.commit()
        return wid

    def add_style_preset(self, name: str, positive: str, negative: str, type: str = "user") -> str:
        pid = str(uuid.uuid4())
        self.db.execute(
            "INSERT INTO style_presets (id, name, preset_data, type) VALUES (?, ?, ?, ?)",
            [
                pid,
                name,
                json.dumps({"positive_prompt": positive, "negative_prompt": negative}),
                type,
            ],
        )
        self.db.commit()
        return pid

    def add_model(self, path: str, *, name: str, hash: str, base: str = "sd-1") -> str:
        key = str(uuid.uuid4())
        config = {
            "key": key,
            "hash": hash,
            "path": path,
            "file_size": 1,
            "name": name,
            "description": None,
            "source": path,
            "source_type": "path",
            "type": "main",
            "trigger_phrases": None,
            "default_settings": {"width": 512, "height": 512},
            "format": "diffusers",
            "repo_variant": "",
            "prediction_type": "epsilon",
            "variant": "normal",
            "base": base,
        }
        self.db.execute("INSERT INTO models (id, config) VALUES (?, ?)", [key, json.dumps(config)])
        self.db.commit()
        return key

    def close(self) -> None:
        self.db.close()


def make_invokeai_root(root: Path, schema: Path = SCHEMA_6) -> FakeInvokeAIRoot:
    """An empty InvokeAI root whose database has InvokeAI's exact schema."""
    (root / "databases").mkdir(parents=True)
    (root / "invokeai.yaml").write_text("schema_version: 4.0.3\nhost: 127.0.0.1\n")
    db = sqlite3.connect(root / "databases" / "invokeai.db")
    db.execute("PRAGMA journal_mode = WAL")  # as InvokeAI keeps it
    db.executescript(schema.read_text())
    version = int(schema.name.split("-")[1].lstrip("v"))
    db.executemany(
        "INSERT INTO migrations (version, migrated_at) VALUES (?, '2024-01-01 00:00:00')",
        [(v,) for v in range(version + 1)],
    )
    db.commit()
    return FakeInvokeAIRoot(root=root, schema=schema, db=db)
