"""Every ModelView message handler with the real model manager and the tiny SD1 model."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invoke_nb.studio import Studio
from invoke_nb.widgets import ModelView

from .test_graph_editor import err, ok


class Recorder(ModelView):
    def send(self, content: Any, buffers: Any = None) -> None:
        self.__dict__.setdefault("outbox", []).append((content, buffers))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            c["data"]
            for c, _ in list(self.__dict__.get("outbox", []))
            if c.get("kind") == "event" and c["name"] == name
        ]


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio", start_queue=False)
    yield s
    s.close()


@pytest.fixture
def view(studio: Studio) -> Iterator[Recorder]:
    v = Recorder(studio)
    yield v
    v.close()


def test_install_from_path_reports_progress_then_lists_and_removes(
    studio: Studio, view: Recorder, tiny_sd1: Path
) -> None:
    assert ok(view, "list") == []
    job = ok(view, "install", source=str(tiny_sd1), name="tiny")
    assert job["status"] == "running" and job["source"] == str(tiny_sd1)
    done = view.wait(job["job_id"], timeout=120)
    assert done.status == "done", done.error
    assert view.events("install_progress"), "hashing progress should be reported"
    (final,) = view.events("install_done")
    assert final["status"] == "done" and final["record"]["name"] == "tiny"

    (row,) = ok(view, "list")
    assert (row["name"], row["type"], row["base"], row["format"]) == (
        "tiny",
        "main",
        "sd-1",
        "diffusers",
    )
    assert row["file_size"] > 0 and row["key"] == studio.models.get("tiny").key
    assert [j["status"] for j in ok(view, "jobs")] == ["done"]

    removed = ok(view, "remove", key=row["key"])
    assert removed["name"] == "tiny" and studio.models.list() == []
    assert not Path(row["path"]).exists()  # a copy in our models folder: deleted
    assert tiny_sd1.exists()  # the source is untouched
    e = err(view, "remove", key=row["key"])
    assert e["type"] == "ModelNotFoundError" and row["key"] in e["message"]


def test_a_failing_install_is_reported_with_its_reason(view: Recorder, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.safetensors"
    job = ok(view, "install", source=str(missing))
    done = view.wait(job["job_id"], timeout=30)
    assert done.status == "error" and done.error is not None
    (event,) = view.events("install_done")
    assert event["status"] == "error" and event["error"]["message"]
    assert ok(view, "list") == []


def test_cache_stats_and_bad_requests(view: Recorder) -> None:
    stats = ok(view, "cache")
    for key in ("hits", "misses", "loads", "entries", "bytes_ram", "ram_budget", "last_loads"):
        assert key in stats
    assert stats["ram_budget"] > 0
    assert "source" in err(view, "install", source="")["message"]
    assert "no install job 5" in err(view, "cancel_install", job_id=5)["message"]
    assert err(view, "remove", key="nope")["type"] == "ModelNotFoundError"


class _SlowFile(http.server.BaseHTTPRequestHandler):
    """Serves 8 MiB slowly (256 KiB every 50 ms) so an install can be cancelled mid-way."""

    size = 8 << 20

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        sent = 0
        try:
            while sent < self.size:
                self.wfile.write(b"\0" * (256 << 10))
                sent += 256 << 10
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowFile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/big-model.safetensors"
    server.shutdown()
    server.server_close()


def test_url_install_reports_bytes_and_can_be_cancelled(view: Recorder, slow_url: str) -> None:
    job = ok(view, "install", source=slow_url)
    deadline = time.monotonic() + 20
    while not view.events("install_progress") and time.monotonic() < deadline:
        time.sleep(0.02)
    first = view.events("install_progress")[0]
    assert first["total"] == 8 << 20 and 0 < first["done"] < first["total"]
    assert "downloading big-model.safetensors" in first["message"]
    assert ok(view, "cancel_install", job_id=job["job_id"])["job_id"] == job["job_id"]
    done = view.wait(job["job_id"], timeout=20)
    assert done.status == "canceled" and done.done_bytes < 8 << 20
    (event,) = view.events("install_done")
    assert event["status"] == "canceled" and "cancel" in event["error"]["message"]
    assert ok(view, "list") == []
