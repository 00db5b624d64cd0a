"""The Qwen3 encoder bundle FLUX.2 Klein's loader hands out (InvokeAI's ``Qwen3EncoderField``).

The transformer bundle, FLUX conditioning and Kontext reference fields are FLUX.1's
(``nodes/diffusion/flux/fields.py``): InvokeAI uses the same ones for FLUX.2.
"""

from __future__ import annotations

from invoke_nb.nodes.diffusion.fields import Qwen3EncoderField

__all__ = ["Qwen3EncoderField"]
