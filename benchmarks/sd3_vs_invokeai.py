"""Our SD3 graph (default seeding) against InvokeAI 6.11.1's own SD3 invocations, same model.

    PYTHONPATH=src .venv/bin/python benchmarks/sd3_vs_invokeai.py \
        [--invokeai-python /work/ext/invokeai-6.11.1/bin/python] [--model DIR]

A tiny random-weight SD3.5 Medium-shaped model is built (or ``--model`` is used); a
subprocess in InvokeAI's venv runs its ``sd3_text_encoder`` (prompt and negative),
``sd3_denoise`` and ``sd3_l2i`` classes on the parts loaded with diffusers/transformers, with
a stand-in for the invocation context that hands those parts out (no InvokeAI server or
database). Our txt2img graph runs the same prompt, seed, steps, size and CFG here. Printed:
the largest pixel difference, the share of values that differ and each side's latents range.
Both run on the CPU in float32 (InvokeAI's choice there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_INVOKEAI = r"""
import contextlib, json, sys
import numpy as np, torch
from diffusers import AutoencoderKL, SD3Transformer2DModel
from transformers import CLIPTextModelWithProjection, CLIPTokenizer, T5EncoderModel, AutoTokenizer
from invokeai.app.invocations.model import CLIPField, ModelIdentifierField, T5EncoderField, TransformerField, VAEField
from invokeai.app.invocations.fields import SD3ConditioningField
from invokeai.app.invocations.sd3_text_encoder import Sd3TextEncoderNode
from invokeai.app.invocations.sd3_denoise import SD3DenoiseNode
from invokeai.app.invocations.sd3_latents_to_image import SD3LatentsToImageNode
from invokeai.backend.model_manager.taxonomy import ModelFormat

folder, prompt, negative, seed, steps, size, cfg, out = sys.argv[1:]
torch.set_num_threads(1)
load = {
    "transformer": lambda p: SD3Transformer2DModel.from_pretrained(p),
    "vae": lambda p: AutoencoderKL.from_pretrained(p),
    "text_encoder": lambda p: CLIPTextModelWithProjection.from_pretrained(p),
    "text_encoder_2": lambda p: CLIPTextModelWithProjection.from_pretrained(p),
    "text_encoder_3": lambda p: T5EncoderModel.from_pretrained(p),
    "tokenizer": lambda p: CLIPTokenizer.from_pretrained(p),
    "tokenizer_2": lambda p: CLIPTokenizer.from_pretrained(p),
    "tokenizer_3": lambda p: AutoTokenizer.from_pretrained(p),
}
parts = {k: f(f"{folder}/{k}") for k, f in load.items()}
for m in parts.values():
    if hasattr(m, "eval"):
        m.eval()

class Loaded:
    def __init__(self, model):
        self.model = model
        self.config = type("C", (), {"format": ModelFormat.Diffusers})()
    def __enter__(self):
        return self.model
    def __exit__(self, *a):
        return False
    @contextlib.contextmanager
    def model_on_device(self, working_mem_bytes=None):
        yield ({}, self.model)

store = {}
saved = []
class Models:
    def load(self, ident):
        return Loaded(parts[ident.submodel_type.value])
class Store:
    def save(self, data=None, tensor=None):
        name = f"v{len(store)}"; store[name] = tensor if data is None else data; return name
    def load(self, name):
        return store[name]
class Images:
    def save(self, image):
        saved.append(image)
        return type("D", (), {"image_name": "out", "width": image.width, "height": image.height})()
class Util:
    def signal_progress(self, *a, **k): pass
    def sd_step_callback(self, *a, **k): pass
class Ctx:
    models, conditioning, tensors, images, util = Models(), Store(), Store(), Images(), Util()
    logger = type("L", (), {"warning": staticmethod(print), "info": staticmethod(print)})()

def ident(sub):
    return ModelIdentifierField(key="k", hash="h", name="tiny", base="sd-3", type="main", submodel_type=sub)

clip_l = CLIPField(tokenizer=ident("tokenizer"), text_encoder=ident("text_encoder"), loras=[], skipped_layers=0)
clip_g = CLIPField(tokenizer=ident("tokenizer_2"), text_encoder=ident("text_encoder_2"), loras=[], skipped_layers=0)
t5 = T5EncoderField(tokenizer=ident("tokenizer_3"), text_encoder=ident("text_encoder_3"), loras=[])
conds = [
    Sd3TextEncoderNode(id=f"c{i}", clip_l=clip_l, clip_g=clip_g, t5_encoder=t5, prompt=p).invoke(Ctx())
    for i, p in enumerate((prompt, negative))
]
den = SD3DenoiseNode(
    id="d", transformer=TransformerField(transformer=ident("transformer"), loras=[]),
    positive_conditioning=conds[0].conditioning, negative_conditioning=conds[1].conditioning,
    cfg_scale=float(cfg), width=int(size), height=int(size), steps=int(steps), seed=int(seed),
).invoke(Ctx())
SD3LatentsToImageNode(id="l", latents=den.latents, vae=VAEField(vae=ident("vae"))).invoke(Ctx())
lat = store[den.latents.latents_name]
np.save(out, np.asarray(saved[0].convert("RGB")))
print(json.dumps({"latents": [float(lat.min()), float(lat.max())]}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--invokeai-python", default="/work/ext/invokeai-6.11.1/bin/python")
    ap.add_argument("--model", type=Path, help="an SD3 diffusers folder (default: a tiny one)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--cfg", type=float, default=3.5)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import invoke_nb as inb
    from invoke_nb.graph.standard import txt2img
    from invoke_nb.models.local import LocalModels, identifier

    tmp = Path(tempfile.mkdtemp(prefix="sd3-vs-invokeai-"))
    if args.model is None:
        from invoke_nb.testing.tiny_sd3 import make_sd3

        folder = make_sd3(tmp / "tiny-sd3")
    else:
        folder = args.model
    prompt, negative = "a cute tiger cub, photograph", "blurry, low quality"
    out = tmp / "invokeai.npy"
    proc = subprocess.run(
        [
            args.invokeai_python,
            "-c",
            _INVOKEAI,
            str(folder),
            prompt,
            negative,
            str(args.seed),
            str(args.steps),
            str(args.size),
            str(args.cfg),
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(proc.stderr[-3000:])
        raise SystemExit("InvokeAI's SD3 invocations did not run")
    theirs = np.load(out).astype(np.int16)

    models = LocalModels(device="cpu", precision="float32")
    model = identifier(models.register(folder, name="sd3", base="sd-3"))
    g = txt2img(
        model,
        prompt,
        negative=negative,
        width=args.size,
        height=args.size,
        steps=args.steps,
        cfg_scale=args.cfg,
        seed=args.seed,
    )
    r = inb.Runner(services=inb.Services(models=models)).run(g)
    ours = np.asarray(r.image("l2i").convert("RGB")).astype(np.int16)
    lat = r.value(r.outputs["sd3_denoise"].latents)
    diff = np.abs(ours - theirs)
    print(
        f"sd-3 ({'given' if args.model else 'tiny'} model) {args.size}x{args.size} "
        f"{args.steps} steps cfg {args.cfg} seed {args.seed}, CPU float32"
    )
    print(
        f"InvokeAI 6.11.1 latents range {json.loads(lines[-1])['latents']}, ours "
        f"[{float(lat.min())}, {float(lat.max())}]"
    )
    print(
        f"max pixel difference ours vs InvokeAI: {int(diff.max())}/255; "
        f"{int((diff > 0).sum())} of {diff.size} values differ"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
