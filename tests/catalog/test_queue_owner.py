"""Claim rules of the queue between owners: one's own, shared, and orphaned items only."""

from __future__ import annotations

import socket
import subprocess
import sys

from invoke_nb.catalog import Catalog
from invoke_nb.catalog.queue import _started, new_owner, owner_alive, release_owner

G = {"id": "g", "nodes": {}, "edges": []}


def _dead_pid_owner() -> str:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return f"{socket.gethostname()}:{p.pid}:1:gone"


def test_claims_follow_ownership(cat: Catalog) -> None:
    me, other = new_owner(), new_owner()
    try:
        (mine,) = cat.queue.enqueue([G], owner=me)
        (theirs,) = cat.queue.enqueue([G], owner=other, priority=5)  # first in line
        (shared,) = cat.queue.enqueue([G])
        (orphan,) = cat.queue.enqueue([G], owner=_dead_pid_owner())
        claimed = []
        while (item := cat.queue.claim_next(owner=me)) is not None:
            claimed.append(item.item_id)
        assert claimed == [mine, shared, orphan]
        assert cat.queue.get(theirs).status == "pending"
        release_owner(other)  # its Studio closed: its items are free to take
        assert cat.queue.claim_next(owner=me).item_id == theirs
    finally:
        release_owner(me)
        release_owner(other)


def test_owner_alive_knows_reused_pids() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host, started = socket.gethostname(), _started(proc.pid)
        assert owner_alive(f"{host}:{proc.pid}:{started}:x")
        if started:  # /proc: the same PID with another start time is another process
            assert not owner_alive(f"{host}:{proc.pid}:{int(started) - 1}:x")
        assert owner_alive(f"another-host:{proc.pid}:{started}:x")  # cannot tell: alive
    finally:
        proc.kill()
        proc.wait()
    assert not owner_alive(f"{host}:{proc.pid}:{started}:x")
    assert not owner_alive(None)
