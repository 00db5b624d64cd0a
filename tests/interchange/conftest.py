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
from invokeai_root import FIXTURES, REFERENCE_PNGS, SCHEMA_4, SCHEMA_6  # noqa: F401
from reference_model import REFERENCE_HASH, build_reference_sd1


@pytest.fixture(scope="session")
def reference_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD1 model the reference PNGs were generated with (rebuilt, same bytes)."""
    return build_reference_sd1(tmp_path_factory.mktemp("reference-model") / "tiny-sd1")


@pytest.fixture(scope="session")
def invokeai_weights(reference_model: Path) -> Path:
    """The reference model, when this machine rebuilds the very weights InvokeAI ran.

    The factory draws its weights from torch's random generator (seed 0). A torch whose
    normal-sampling path differs (another release, a CPU kernel rounding Box-Muller another
    way) draws other weights; InvokeAI's pixels then cannot be reproduced by any code, so the
    tests that need those weights are skipped with the reason instead of failing. What does
    not depend on torch's generator is tested everywhere: the hash rule on fixed bytes
    (tests/models/test_hashing.py), the hashes the PNGs record, recall and import.
    """
    from invoke_nb.models.hashing import model_hash

    got = model_hash(reference_model)
    if got != REFERENCE_HASH:
        import torch

        pytest.skip(
            f"torch {torch.__version__} draws other random weights for the reference model "
            f"({got[:19]}..., InvokeAI ran {REFERENCE_HASH[:19]}...): rebuild the fixtures "
            "as tests/fixtures/invokeai/README.md says"
        )
    return reference_model


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[object]:
    from invoke_nb.studio import Studio

    st = Studio(tmp_path / "studio")
    yield st
    st.close()
