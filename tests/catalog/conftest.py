"""Fixtures for catalog tests: a fresh studio root per test, small images with known pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from invoke_nb.catalog import Catalog


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog(tmp_path / "studio", busy_timeout=10.0)
    yield c
    c.close()
