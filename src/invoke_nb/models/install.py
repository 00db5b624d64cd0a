"""Getting model files onto disk: what a source string means, downloads, pickle checks, placement.

The manager (``manager.py``) decides what to record; this module only moves bytes:
- :func:`parse_source` tells a local path from an http(s) URL and a Hugging Face repo id
  (``org/name[:variant][::subfolder]``, InvokeAI's syntax);
- :func:`download_url` streams a URL to disk with progress, resumes a partial file with an HTTP
  Range request, and stops between chunks when cancelled (keeping the partial file);
- :func:`download_hf` fetches a repo (or one subfolder / variant of it) with huggingface_hub,
  which honours ``HF_ENDPOINT``;
- :func:`scan_pickle` refuses pickle checkpoints that import anything dangerous (picklescan);
- :func:`place` copies (or hard-links) a file or folder into the models folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from invoke_nb.models.errors import (
    CorruptModelError,
    DownloadCancelledError,
    DownloadError,
    ModelInstallError,
    UnsafeModelError,
)
from invoke_nb.models.hashing import WEIGHT_SUFFIXES

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "Progress",
    "Source",
    "download_hf",
    "download_url",
    "parse_source",
    "place",
    "scan_pickle",
]

Progress = Callable[[str, int, int | None], None]
"""``progress(message, done_bytes, total_bytes_or_None)``."""

_REPO_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?::(?P<variant>[\w.-]+))?(?:::(?P<sub>[\w./-]+))?$"
)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A parsed install source."""

    kind: str  # "path", "url" or "hf_repo_id"
    value: str  # absolute path, URL or repo id
    variant: str | None = None
    subfolder: str | None = None


def parse_source(source: str | os.PathLike[str]) -> Source:
    """Classify ``source``: an existing local path, an http(s) URL, or a repo id."""
    text = os.fspath(source).strip()
    if text.startswith(("http://", "https://")):
        return Source("url", text)
    path = Path(text).expanduser()
    if path.exists():
        return Source("path", str(path.resolve()))
    m = _REPO_ID.match(text)
    if m and not text.startswith(("/", ".", "~")):
        return Source("hf_repo_id", m["repo"], m["variant"], m["sub"])
    raise ModelInstallError(
        f"model source {text!r} is not an existing file or folder, an http(s) URL, "
        "or a Hugging Face repo id (org/name[:variant][::subfolder])"
    )


# -- pickles -----------------------------------------------------------------------------


def scan_pickle(path: Path) -> None:
    """Raise :class:`UnsafeModelError` if picklescan finds dangerous imports in ``path``."""
    from picklescan.scanner import scan_file_path

    try:
        size = path.stat().st_size
    except OSError as e:
        raise CorruptModelError(f"{path.name}: cannot read the file ({e})") from None
    if size == 0:
        raise CorruptModelError(f"{path.name}: the file is empty (an interrupted download?)")
    try:
        result = scan_file_path(str(path))
    except Exception as e:  # truncated zip, bad pickle opcodes, ...: the file is damaged
        raise CorruptModelError(
            f"{path.name}: not a readable checkpoint ({type(e).__name__}: {e})"
        ) from None
    if result.scan_err:
        raise UnsafeModelError(f"{path.name}: the pickle scan could not read the file")
    if result.infected_files or result.issues_count:
        bad = sorted(
            {
                f"{g.module}.{g.name}"
                for g in result.globals
                if str(g.safety) != "SafetyLevel.Innocuous"
            }
        )
        raise UnsafeModelError(
            f"{path.name}: the pickle scan found dangerous imports ({', '.join(bad) or 'unknown'})"
            "; refusing to install"
        )


# -- URL downloads -----------------------------------------------------------------------


def _filename_from(response_headers: dict[str, str], url: str) -> str:
    disp = response_headers.get("content-disposition", "")
    m = re.search(r"filename\*=UTF-8''([^;]+)", disp) or re.search(r'filename="?([^";]+)"?', disp)
    name = unquote(m.group(1)) if m else unquote(Path(urlparse(url).path).name)
    name = Path(name).name  # no path components from the server
    return name or "model.safetensors"


def download_url(
    url: str,
    folder: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` into ``folder`` and return the file's path.

    The data goes to ``<name>.part`` first; a later call with the same ``folder`` resumes it
    with a ``Range`` request (restarting if the server ignores ranges). Cancelling raises
    :class:`DownloadCancelledError` and keeps the partial file.
    """
    import httpx

    folder.mkdir(parents=True, exist_ok=True)
    existing = [p for p in folder.iterdir() if p.suffix == ".part"]
    part = existing[0] if existing else None
    offset = part.stat().st_size if part else 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout) as r:
            if r.status_code == 416 and part is not None:  # already complete
                return _finish(part)
            if r.status_code not in (200, 206):
                raise DownloadError(f"downloading {url}: HTTP {r.status_code}")
            name = _filename_from(dict(r.headers), str(r.url))
            if part is None:
                part = folder / f"{name}.part"
            if r.status_code == 200:
                offset = 0  # the server sent the whole file
            length = r.headers.get("content-length")
            total = offset + int(length) if length is not None else None
            done = offset
            with part.open("r+b" if offset else "wb") as f:
                f.seek(offset)
                f.truncate()
                for chunk in r.iter_bytes(_CHUNK):
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelledError(
                            f"download of {url} cancelled at {done} bytes; "
                            "installing again resumes it"
                        )
                    f.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(f"downloading {name}", done, total)
            if total is not None and done != total:
                raise DownloadError(f"downloading {url}: got {done} of {total} bytes")
    except httpx.HTTPError as e:
        raise DownloadError(f"downloading {url}: {e}") from e
    return _finish(part)


def _finish(part: Path) -> Path:
    final = part.with_suffix("")
    part.replace(final)
    return final


def download_folder_for(models_dir: Path, key: str) -> Path:
    """A stable scratch folder for one source (so an interrupted download resumes)."""
    return models_dir / ".download" / hashlib.sha256(key.encode()).hexdigest()[:16]


# -- Hugging Face ------------------------------------------------------------------------

_SKIP_SUFFIXES = (".msgpack", ".onnx", ".onnx_data", ".h5", ".ot", ".pb", ".tflite", ".md")


def _select_files(files: list[str], variant: str | None, subfolder: str | None) -> list[str]:
    """The repo files worth fetching: one subfolder, one variant, safetensors over pickles."""
    if subfolder:
        prefix = subfolder.strip("/") + "/"
        files = [f for f in files if f.startswith(prefix)]
    files = [f for f in files if not f.endswith(_SKIP_SUFFIXES) and not f.startswith(".")]
    weights = [f for f in files if f.endswith(WEIGHT_SUFFIXES)]
    others = [f for f in files if f not in weights]

    def stem(f: str) -> tuple[str, str | None]:
        p = Path(f)
        parts = p.name.split(".")
        var = parts[-2] if len(parts) >= 3 else None
        base = ".".join(parts[:-2] if var else parts[:-1])
        return str(p.parent / base), var

    chosen: list[str] = []
    folders = {str(Path(f).parent) for f in weights}
    for folder in folders:
        here = [f for f in weights if str(Path(f).parent) == folder]
        wanted = [f for f in here if stem(f)[1] == variant] if variant else []
        if not wanted:
            wanted = [f for f in here if stem(f)[1] is None]
        if not wanted:
            wanted = here
        safes = [f for f in wanted if f.endswith(".safetensors")]
        chosen.extend(safes or wanted)
    return sorted(others + chosen)


def _check_reachable(api: HfApi, repo_id: str, endpoint: str | None) -> None:
    """Fail at once when the Hub cannot be reached: listing a repo retries a refused or
    timed-out connection five times with back-off (~23 s), so an offline user would wait
    that long for every model a node installs on first use. One plain request tells."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.model_info(repo_id, revision="main", timeout=10)
    except HfHubHTTPError:  # an HTTP answer (404, 401, ...): the listing reports it
        return
    except Exception as e:
        # refused, unresolvable, timed out: requests' errors are OSErrors, httpx's (and
        # httpx2's, which huggingface_hub 2 uses) TransportErrors
        transport = any(c.__name__ == "TransportError" for c in type(e).__mro__)
        if not (transport or isinstance(e, OSError)):
            return
        where = endpoint or "https://huggingface.co"
        raise DownloadError(
            f"cannot reach the Hugging Face Hub at {where} for {repo_id!r} "
            f"({type(e).__name__}: {e})"
        ) from e


def download_hf(
    repo_id: str,
    folder: Path,
    *,
    variant: str | None = None,
    subfolder: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Fetch ``repo_id`` (optionally one subfolder and variant) into ``folder``.

    Returns the folder holding the model: the subfolder when one was asked for, or the single
    weight file when the repo holds just one and no config.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
    from tqdm.auto import tqdm as base_tqdm

    # Read HF_ENDPOINT now (huggingface_hub reads it once, at import time).
    endpoint = os.environ.get("HF_ENDPOINT") or None
    api = HfApi(endpoint=endpoint)
    _check_reachable(api, repo_id, endpoint)
    try:
        files = api.list_repo_files(repo_id)
    except RepositoryNotFoundError as e:
        raise ModelInstallError(f"Hugging Face repo {repo_id!r} not found") from e
    except HfHubHTTPError as e:
        if getattr(e.response, "status_code", None) in (401, 404):
            raise ModelInstallError(f"Hugging Face repo {repo_id!r} not found ({e})") from e
        raise DownloadError(f"listing Hugging Face repo {repo_id!r}: {e}") from e
    selected = _select_files(files, variant, subfolder)
    if not selected:
        where = f" under {subfolder!r}" if subfolder else ""
        raise ModelInstallError(f"Hugging Face repo {repo_id!r} has no model files{where}")

    class _Progress(base_tqdm):  # huggingface_hub reports bytes through a tqdm class
        def __init__(self, *args, **kwargs):
            kwargs["file"] = io.StringIO()  # quiet: we report through ``progress``
            kwargs.pop("disable", None)
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelledError(f"download of {repo_id} cancelled")
            super().update(n)
            if progress and self.unit == "B":
                progress(f"downloading {repo_id}", int(self.n), int(self.total or 0) or None)

    try:
        snapshot_download(
            repo_id,
            allow_patterns=selected,
            local_dir=str(folder),
            cache_dir=str(folder / ".hf-cache"),
            endpoint=endpoint,
            tqdm_class=_Progress,
            max_workers=2,
        )
    except HfHubHTTPError as e:
        raise DownloadError(f"downloading Hugging Face repo {repo_id!r}: {e}") from e
    shutil.rmtree(folder / ".cache", ignore_errors=True)
    shutil.rmtree(folder / ".hf-cache", ignore_errors=True)
    root = folder / subfolder.strip("/") if subfolder else folder
    weights = [f for f in selected if f.endswith(WEIGHT_SUFFIXES)]
    has_config = any(f.endswith(".json") for f in selected)
    if len(weights) == 1 and not has_config:
        return folder / weights[0]
    return root


# -- placement ---------------------------------------------------------------------------


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def unique_destination(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name_2``, ``name_3``... when taken."""
    dest = folder / name
    n = 2
    while dest.exists():
        p = Path(name)
        dest = folder / f"{p.stem}_{n}{p.suffix}"
        n += 1
    return dest


def place(src: Path, dest: Path, *, move: bool = False) -> Path:
    """Copy (hard-linking where possible) or move ``src`` to ``dest``; returns ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if move:
        shutil.move(str(src), str(dest))
    elif src.is_dir():
        shutil.copytree(src, dest, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dest))
    return dest


def safe_name(name: str) -> str:
    """A file-system-friendly version of a model name."""
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._")
    return cleaned or "model"
