"""Boards, models, workflows, style presets, client state, queue and catalog.sql."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import duckdb
import pytest
from catalog_data import pixel_image

from invoke_nb.catalog import Catalog, CatalogReadOnlyError, NotFoundError
from invoke_nb.models.records import MemoryModelRecordStore, ModelRecord, UnknownModelError


def test_boards_counts_covers_delete(cat: Catalog) -> None:
    a = cat.boards.create("Animals")
    b = cat.boards.create("Buildings")
    imgs = [cat.images.save(pixel_image((i, 1, 1)), board_id=a.board_id) for i in range(3)]
    cat.images.save(pixel_image((9, 9, 9)), board_id=a.board_id, is_intermediate=True)
    listed = {x.board_name: x for x in cat.boards.list()}
    assert listed["Animals"].image_count == 3 and listed["Buildings"].image_count == 0
    assert listed["Animals"].cover_image_name == imgs[-1].image_name  # newest by default
    assert listed["Buildings"].cover_image_name is None
    assert (
        cat.boards.update(a.board_id, cover_image_name=imgs[0].image_name).cover_image_name
        == imgs[0].image_name
    )
    assert cat.boards.rename(b.board_id, "Houses").board_name == "Houses"
    cat.boards.update(b.board_id, archived=True)
    assert [x.board_name for x in cat.boards.list()] == ["Animals"]
    assert len(cat.boards.list(include_archived=True)) == 2
    with pytest.raises(ValueError, match="non-empty"):
        cat.boards.create("  ")
    with pytest.raises(ValueError, match="cannot change board field"):
        cat.boards.update(a.board_id, deleted_at="x")
    with pytest.raises(NotFoundError, match=r"no image named 'ghost\.png'"):
        cat.boards.update(a.board_id, cover_image_name="ghost.png")

    # delete keeping images: they become uncategorized
    assert cat.boards.delete(a.board_id) == 4
    assert all(cat.images.get(r.image_name).board_id is None for r in imgs)
    assert cat.boards.uncategorized_count() == 3
    with pytest.raises(NotFoundError):
        cat.boards.get(a.board_id)

    # delete with images: records and files go
    c = cat.boards.create("Trash")
    gone = [cat.images.save(pixel_image((i, 2, 2)), board_id=c.board_id) for i in range(2)]
    assert cat.boards.delete(c.board_id, delete_images=True) == 2
    for r in gone:
        assert not cat.files.path(r.image_name).exists()
        assert not cat.files.thumbnail_path(r.image_name).exists()
        with pytest.raises(NotFoundError):
            cat.images.get(r.image_name)
    assert cat.images.count() == 3
    with pytest.raises(NotFoundError):
        cat.boards.delete("nope")


def _model(
    key: str, name: str, base: str = "sd-1", type: str = "main", h: str | None = None
) -> ModelRecord:
    return ModelRecord(
        key=key, hash=h or f"blake3:{key}", path=f"/m/{key}", name=name, base=base, type=type,
        format="diffusers", default_settings={"steps": 20}, trigger_phrases=["tp"],
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["duckdb", "memory"])
def test_model_store_behaves_like_the_protocol(cat: Catalog, kind: str) -> None:
    """The DuckDB store and the in-memory reference store answer the same calls alike."""
    store = cat.models if kind == "duckdb" else MemoryModelRecordStore()
    r1 = store.add(_model("k1", "zeta"))
    store.add(_model("k2", "alpha", base="sdxl"))
    store.add(_model("k3", "vae-x", type="vae", h="blake3:shared"))
    with pytest.raises(ValueError, match="already exists"):
        store.add(_model("k1", "dup"))
    got = store.get("k1")
    assert got == r1 and got.created_at.tzinfo is not None
    assert [m.key for m in store.list()] == ["k2", "k3", "k1"]
    assert [m.key for m in store.list(base="sd-1", type="main")] == ["k1"]
    assert [m.key for m in store.list(name="alpha")] == ["k2"]
    assert store.by_hash("blake3:shared").key == "k3"
    assert store.by_hash("blake3:none") is None
    new = store.update("k1", {"name": "renamed", "trigger_phrases": ["a", "b"]})
    assert new.name == "renamed" and store.get("k1").trigger_phrases == ["a", "b"]
    assert new.updated_at >= r1.updated_at
    store.delete("k2")
    with pytest.raises(UnknownModelError):
        store.get("k2")
    with pytest.raises(UnknownModelError):
        store.delete("k2")


def test_model_records_survive_reopen(cat: Catalog) -> None:
    cat.models.add(_model("k9", "persist"))
    cat.close()
    again = Catalog(cat.root)
    assert again.models.get("k9").default_settings == {"steps": 20}
    again.close()


def test_workflows_library(cat: Catalog) -> None:
    wf = {
        "name": "Text to image",
        "description": "basic",
        "tags": "txt2img, sd1",
        "nodes": [],
        "edges": [],
    }
    rec = cat.workflows.create(wf)
    assert (rec.name, rec.description, rec.tags, rec.category) == (
        "Text to image",
        "basic",
        "txt2img, sd1",
        "user",
    )
    assert rec.workflow["id"] == rec.workflow_id and rec.workflow["nodes"] == []
    other = cat.workflows.create({"nodes": []}, name="Upscale", category="default", tags=["up"])
    assert [w.name for w in cat.workflows.list(tag="sd1")] == ["Text to image"]
    assert [w.name for w in cat.workflows.list(category="default")] == ["Upscale"]
    assert [w.name for w in cat.workflows.list(query="BASIC")] == ["Text to image"]
    cat.workflows.mark_opened(other.workflow_id)
    assert cat.workflows.list()[0].workflow_id == other.workflow_id  # recently opened first
    assert cat.workflows.get(other.workflow_id).opened_at is not None
    upd = cat.workflows.update(rec.workflow_id, name="T2I", workflow={"nodes": [1]})
    assert upd.name == "T2I" and upd.workflow == {"nodes": [1], "id": rec.workflow_id}
    with pytest.raises(ValueError, match="order_by"):
        cat.workflows.list(order_by="size")
    with pytest.raises(TypeError, match="must be a dict"):
        cat.workflows.create("x")  # type: ignore[arg-type]
    cat.workflows.delete(rec.workflow_id)
    with pytest.raises(NotFoundError, match="no workflow"):
        cat.workflows.get(rec.workflow_id)


def test_style_presets(cat: Catalog) -> None:
    p = cat.style_presets.create(
        "Cinematic", positive_prompt="{prompt}, film grain", negative_prompt="cartoon"
    )
    cat.style_presets.create("anime", positive_prompt="anime {prompt}", type="default")
    assert [x.name for x in cat.style_presets.list()] == ["anime", "Cinematic"]
    assert [x.name for x in cat.style_presets.list(type="user")] == ["Cinematic"]
    up = cat.style_presets.update(p.id, negative_prompt="cartoon, 3d")
    assert up.negative_prompt == "cartoon, 3d" and up.positive_prompt == "{prompt}, film grain"
    with pytest.raises(ValueError, match="cannot change style preset field"):
        cat.style_presets.update(p.id, id="x")
    cat.style_presets.delete(p.id)
    with pytest.raises(NotFoundError):
        cat.style_presets.get(p.id)


def test_client_state(cat: Catalog) -> None:
    assert cat.client_state.get("layout", {"x": 0}) == {"x": 0}
    cat.client_state.set("layout", {"panels": ["gallery"], "w": 3})
    cat.client_state.set("layout", {"panels": ["editor"]})
    cat.client_state.set("last_board", None)
    assert cat.client_state.items() == {"last_board": None, "layout": {"panels": ["editor"]}}
    assert cat.client_state.delete("layout") and not cat.client_state.delete("layout")
    with pytest.raises(TypeError, match="'bad'"):
        cat.client_state.set("bad", object())


def test_queue_order_claim_status(cat: Catalog) -> None:
    q = cat.queue
    ids = q.enqueue(
        [{"n": 1}, {"n": 2}, {"n": 3}], batch_id="b1", field_values=[[{"f": 1}], None, None]
    )
    (urgent,) = q.enqueue([{"n": 0}], priority=10, batch_id="b2")
    assert ids == sorted(ids) and urgent > ids[-1]
    assert [i.item_id for i in q.list()] == [urgent, *ids]
    first = q.claim_next()
    assert first.item_id == urgent and first.status == "in_progress" and first.started_at
    assert q.get(urgent).worker_pid is not None
    second = q.claim_next()
    assert second.item_id == ids[0] and second.field_values == [{"f": 1}]
    assert q.set_status(urgent, "completed").completed_at is not None
    failed = q.set_status(
        second.item_id, "failed", error_type="ValueError", error_message="bad", error_traceback="tb"
    )
    assert (failed.status, failed.error_type, failed.error_message) == (
        "failed",
        "ValueError",
        "bad",
    )
    assert q.set_status(urgent, "in_progress").status == "completed"  # terminal stays terminal
    assert q.counts() == {
        "pending": 2,
        "in_progress": 0,
        "completed": 1,
        "failed": 1,
        "canceled": 0,
    }
    assert q.cancel(batch_id="b1") == ids[1:]
    assert q.claim_next() is None
    (retry_id,) = q.retry([second.item_id])
    assert q.get(retry_id).retried_from_item_id == second.item_id and q.get(retry_id).graph == {
        "n": 1
    }
    with pytest.raises(ValueError, match="only failed or canceled"):
        q.retry([retry_id])
    assert q.prune() == 4 and [i.item_id for i in q.list()] == [retry_id]
    with pytest.raises(NotFoundError):
        q.get(urgent)
    with pytest.raises(ValueError, match="unknown queue status"):
        q.set_status(retry_id, "done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3 graphs but 1"):
        q.enqueue([{}, {}, {}], field_values=[None])
    assert q.cancel() == [retry_id] and q.clear() == 1


def test_queue_restart_fails_only_dead_workers(cat: Catalog) -> None:
    ids = cat.queue.enqueue([{"a": 1}, {"a": 2}, {"a": 3}])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    alive_pid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with cat.db.transaction() as conn:
            conn.execute(
                "UPDATE session_queue SET status='in_progress', worker_pid=? WHERE item_id=?",
                [dead_pid, ids[0]],
            )
            conn.execute(
                "UPDATE session_queue SET status='in_progress', worker_pid=? WHERE item_id=?",
                [alive_pid.pid, ids[1]],
            )
        assert cat.queue.fail_interrupted() == [ids[0]]
        item = cat.queue.get(ids[0])
        assert (
            item.status == "failed"
            and item.error_type == "Interrupted"
            and "stopped" in item.error_message
        )
        assert cat.queue.get(ids[1]).status == "in_progress"
        assert cat.queue.get(ids[2]).status == "pending"
    finally:
        alive_pid.kill()
        alive_pid.wait()


def test_sql_is_read_only_and_detached(cat: Catalog) -> None:
    cat.images.save(pixel_image((1, 1, 1)), metadata={"seed": 5, "model": {"name": "m1"}})
    rel = cat.sql("SELECT model_name, seed FROM images")
    assert isinstance(rel, duckdb.DuckDBPyRelation)
    assert rel.fetchall() == [("m1", 5)]
    cat.release()  # the relation does not need the file
    assert cat.sql("SELECT count(*) AS n FROM images WHERE seed = ?", [5]).fetchall() == [(1,)]
    assert rel.filter("seed > 1").fetchall() == [("m1", 5)]
    assert list(cat.sql("SELECT * FROM schema_version").df()["version"]) == [1, 2, 3, 4]
    for bad in (
        "DELETE FROM images",
        "DROP TABLE images",
        "UPDATE images SET seed = 1",
        "ATTACH 'x.db'",
    ):
        with pytest.raises(CatalogReadOnlyError, match="read-only"):
            cat.sql(bad)
    with pytest.raises(ValueError, match="exactly one statement"):
        cat.sql("SELECT 1; SELECT 2")
    assert cat.images.count() == 1


def test_times_are_utc(cat: Catalog) -> None:
    rec = cat.images.save(pixel_image((1, 1, 1)))
    assert rec.created_at.tzinfo is UTC
    assert abs((datetime.now(UTC) - rec.created_at).total_seconds()) < 60


def test_default_root_from_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_NB_ROOT", str(tmp_path / "from-env"))
    with Catalog() as cat:
        assert cat.root == tmp_path / "from-env"
        assert (cat.root / "catalog.duckdb").exists()
        assert (cat.root / "images").is_dir() and (cat.root / "thumbnails").is_dir()
    monkeypatch.delenv("INVOKE_NB_ROOT")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from invoke_nb.catalog import default_root

    assert default_root() == tmp_path / "home" / "invoke-nb"
