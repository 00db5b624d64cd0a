"""Fixtures for InvokeAI interchange: the reference model and test InvokeAI roots.

The reference PNGs in tests/fixtures/invokeai/ were made by InvokeAI 6.14.2 itself (see the
README there). A test InvokeAI root is an SQLite database built from InvokeAI's own schema
(dumped from its migrator into ``schema-*.sql``) plus image files, written by the test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1] / "catalog"))  # catalog_data: test images
from invokeai_root import FIXTURES, REFERENCE_PNGS, SCHEMA_4, SCHEMA_6  # noqa: F401
from reference_model import REFERENCE_HASH, build_reference_sd1


@pytest.fixture(scope="session")
def reference_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD1 model the reference PNGs were generated with (rebuilt, same bytes)."""
    return build_reference_sd1(tmp_path_factory.mktemp("reference-model") / "tiny-sd1")


@pytest.fixture(scope="session")
def invokeai_weights(reference_model: Path) -> Path:
    """The reference model, checked to be the very bytes InvokeAI ran (by its recorded hash).

    Its weights come from integers, not from torch's random generator, so the check holds on
    every machine; a failure here means the factory or the rewrite changed.
    """
    from invoke_nb.models.hashing import model_hash

    assert model_hash(reference_model) == REFERENCE_HASH
    return reference_model


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[object]:
    """A fresh catalog per test."""
    from invoke_nb.catalog import Catalog

    c = Catalog(tmp_path / "studio", busy_timeout=10.0)
    yield c
    c.close()


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[object]:
    from invoke_nb.studio import Studio

    st = Studio(tmp_path / "studio")
    yield st
    st.close()
