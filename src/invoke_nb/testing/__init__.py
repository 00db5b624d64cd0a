"""Helpers for tests and the demo: tiny random-weight SD1/SDXL models built offline.

``make_sd1``, ``make_sd1_single_file``, ``make_sdxl``, ``make_lora`` and ``make_vae`` write
model files in seconds; ``tests/conftest.py`` builds them once per test session.
"""

from invoke_nb.testing.tiny_models import (
    make_lora,
    make_sd1,
    make_sd1_single_file,
    make_sdxl,
    make_vae,
)

__all__ = [
    "make_lora",
    "make_sd1",
    "make_sd1_single_file",
    "make_sdxl",
    "make_sdxl_refiner",
    "make_vae",
]
