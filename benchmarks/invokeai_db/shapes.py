"""InvokeAI-shaped gallery data, standard library only (runs in InvokeAI's venv and ours).

The metadata dicts have the fields InvokeAI 6.x's core-metadata node writes for a txt2img
image (generation mode, prompts and style prompts, size, seed, cfg, steps, scheduler, model
and VAE identifiers, LoRAs, app version) with values of realistic length: serialized, a row's
metadata is about 670 bytes, as in InvokeAI databases seen in use.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta


def _words(text: str) -> list[str]:
    return text.split()


MODELS = [
    ("Juggernaut XL v9", "sdxl"), ("RealVisXL V4.0", "sdxl"), ("SDXL 1.0 Base", "sdxl"),
    ("DreamShaper 8", "sd-1"), ("Realistic Vision v5.1", "sd-1"), ("Deliberate v2", "sd-1"),
    ("FLUX.1 dev (quantized)", "flux"), ("FLUX.1 schnell", "flux"),
]  # fmt: skip
SCHEDULERS = ["euler", "euler_a", "dpmpp_2m_k", "dpmpp_3m_k", "ddim", "dpmpp_sde_k", "unipc"]
SUBJECTS = _words(
    "portrait woman man child knight wizard robot cat dog fox dragon castle lighthouse forest "
    "city street market harbor mountain desert ocean river village spaceship garden library "
    "kitchen cathedral bridge train samurai astronaut warrior princess owl horse tiger wolf"
)
STYLES = _words(
    "cinematic dramatic soft golden volumetric moody vibrant pastel noir baroque watercolor "
    "oil painting photograph illustration concept art octane render unreal engine analog film "
    "bokeh studio lighting rim light overcast sunset dawn night rain fog snow neon highly "
    "detailed intricate sharp focus masterpiece award winning 35mm 85mm wide angle closeup"
)
NEGATIVE = _words(
    "blurry lowres bad anatomy extra fingers watermark text signature jpeg artifacts "
    "deformed ugly duplicate cropped worst quality low quality mutated disfigured"
)
RARE_WORD = "aurora"  # in about 0.05% of positive prompts
COMMON_WORD = "lighthouse"  # a subject: in about 1 prompt in 20


@dataclass
class Row:
    """One image as InvokeAI's services store it."""

    image_name: str
    metadata: dict
    width: int
    height: int
    created_at: datetime
    starred: bool
    is_intermediate: bool
    category: str  # "general" or "user" (an uploaded asset)
    board: int | None  # index into the board list


def model_records(seed: int = 11) -> list[dict]:
    """Model identifiers as InvokeAI writes them into metadata (key, hash, name, base, type)."""
    rnd = random.Random(seed)
    return [
        {
            "key": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "hash": f"blake3:{rnd.getrandbits(256):064x}",
            "name": name,
            "base": base,
            "type": "main",
        }
        for name, base in MODELS
    ]


def prompt(rnd: random.Random) -> str:
    words = [rnd.choice(SUBJECTS) for _ in range(rnd.randint(1, 3))]
    words += rnd.sample(STYLES, rnd.randint(10, 18))
    if rnd.random() < 0.0005:
        words.append(RARE_WORD)
    rnd.shuffle(words)
    return "a " + ", ".join(words)


def metadata(rnd: random.Random, models: list[dict], width: int, height: int) -> dict:
    model = rnd.choice(models)
    sdxl = model["base"] == "sdxl"
    meta: dict = {
        "generation_mode": "sdxl_txt2img" if sdxl else "txt2img",
        "positive_prompt": prompt(rnd),
        "negative_prompt": ", ".join(rnd.sample(NEGATIVE, rnd.randint(3, 8))),
        "width": width,
        "height": height,
        "seed": rnd.getrandbits(32),
        "rand_device": "cpu",
        "cfg_scale": rnd.choice((3.5, 5.0, 6.0, 7.0, 7.5)),
        "cfg_rescale_multiplier": 0,
        "steps": rnd.choice((20, 25, 30, 40)),
        "scheduler": rnd.choice(SCHEDULERS),
        "seamless_x": False,
        "seamless_y": False,
        "model": model,
    }
    if sdxl:
        meta["positive_style_prompt"] = ""
        meta["negative_style_prompt"] = ""
    if rnd.random() < 0.1:
        lora = models[0]
        meta["loras"] = [
            {"model": {**lora, "name": "detail tweaker", "type": "lora"}, "weight": 0.75}
        ]
    meta["app_version"] = "6.14.2"
    return meta


def rows(
    n: int, n_boards: int = 50, seed: int = 7, start: datetime = datetime(2023, 1, 1)
) -> Iterator[Row]:
    """``n`` images over three years: 20% on boards, 2% starred, 1% intermediate, 3% assets."""
    rnd = random.Random(seed)
    models = model_records()
    step = 3 * 365 * 24 * 3600 / max(n, 1)
    for i in range(n):
        width, height = rnd.choice(((1024, 1024), (832, 1216), (512, 512), (768, 512)))
        asset = rnd.random() < 0.03
        yield Row(
            image_name=f"{uuid.UUID(int=rnd.getrandbits(128), version=4)}.png",
            metadata={} if asset else metadata(rnd, models, width, height),
            width=width,
            height=height,
            created_at=start + timedelta(seconds=i * step + rnd.random()),
            starred=rnd.random() < 0.02,
            is_intermediate=not asset and rnd.random() < 0.01,
            category="user" if asset else "general",
            board=rnd.randrange(n_boards) if rnd.random() < 0.2 else None,
        )


def dumps(meta: dict) -> str:
    """Metadata text as InvokeAI stores it (pydantic's compact JSON)."""
    return json.dumps(meta, separators=(",", ":"))
