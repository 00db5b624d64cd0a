"""Loopback HTTP servers for install tests: a plain file server with Range support, and a
stand-in for the Hugging Face Hub serving the endpoints huggingface_hub's
``snapshot_download`` / ``list_repo_files`` / ``hf_hub_download`` call."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _send_file(self, path: Path, head: bool, extra: dict[str, str] | None = None) -> None:
        data_len = path.stat().st_size
        rng = self.headers.get("Range")
        start, end, status = 0, data_len - 1, 200
        if rng:
            m = re.match(r"bytes=(\d+)-(\d*)", rng)
            if m:
                start = int(m[1])
                end = int(m[2]) if m[2] else data_len - 1
                status = 206
            if start >= data_len:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{data_len}")
                self.end_headers()
                return
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{data_len}")
        self.end_headers()
        if head:
            return
        with path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(left, 256 * 1024))
                if not chunk:
                    break
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                left -= len(chunk)

    def _json(self, obj: object, status: int = 200) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        if status == 404:
            self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        self.server.requests.append((self.command, self.path, self.headers.get("Range")))
        path = unquote(urlparse(self.path).path)
        self.server.route(self, path, head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str, str | None]]

    def route(self, h: _Handler, path: str, head: bool) -> None:
        raise NotImplementedError


class FileServer(_Server):
    """Serves files under ``root``; a file name ending in ``@name`` gets a
    Content-Disposition; ``/missing`` answers 404."""

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.requests = []

    def route(self, h: _Handler, path: str, head: bool) -> None:
        f = self.root / path.lstrip("/")
        if not f.is_file():
            h.send_error(404)
            return
        h._send_file(f, head)


class FakeHub(_Server):
    """A minimal Hugging Face Hub: ``repos`` maps ``org/name`` to a local folder."""

    def __init__(self, repos: dict[str, Path]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos = repos
        self.requests = []

    def _files(self, repo: str) -> list[str]:
        root = self.repos[repo]
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def route(self, h: _Handler, path: str, head: bool) -> None:
        m = re.match(r"^/api/models/([^/]+/[^/]+)/revision/([^/]+)$", path)
        if m:
            repo = m[1]
            if repo not in self.repos:
                h._json({"error": "Repository not found"}, 404)
                return
            h._json(
                {
                    "id": repo,
                    "modelId": repo,
                    "sha": COMMIT,
                    "private": False,
                    "siblings": [{"rfilename": f} for f in self._files(repo)],
                }
            )
            return
        m = re.match(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?$", path)
        if m:
            repo = m[1]
            if repo not in self.repos:
                h._json({"error": "Repository not found"}, 404)
                return
            root = self.repos[repo]
            entries: list[dict[str, object]] = []
            dirs = set()
            for f in self._files(repo):
                for parent in Path(f).parents:
                    if str(parent) != ".":
                        dirs.add(str(parent))
                data = (root / f).read_bytes()
                entries.append(
                    {
                        "type": "file",
                        "path": f,
                        "size": len(data),
                        "oid": hashlib.sha1(data).hexdigest(),
                    }
                )
            entries += [
                {"type": "directory", "path": d, "size": 0, "oid": "0" * 40} for d in sorted(dirs)
            ]
            h._json(entries)
            return
        m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m and m[1] in self.repos:
            f = self.repos[m[1]] / m[3]
            if not f.is_file():
                h.send_response(404)
                h.send_header("X-Error-Code", "EntryNotFound")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            etag = hashlib.sha256(f.read_bytes()).hexdigest()
            h._send_file(f, head, {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'})
            return
        h._json({"error": f"no route {path}"}, 404)


@contextmanager
def serving(server: _Server) -> Iterator[str]:
    """Run ``server`` in a thread; yield its base URL."""
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
