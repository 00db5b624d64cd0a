"""Control nodes: ControlNet, T2I-Adapter, IP-Adapter, FreeU and the control-image resize.

Ids, fields, defaults and outputs are InvokeAI 6.11.1's. These nodes only describe what to
apply; ``denoise_latents`` loads the models and applies them step by step
(:mod:`invoke_nb.nodes.diffusion.sd.control`).
"""

from invoke_nb.nodes.control import fields, metadata, nodes, regional  # noqa: F401  (registers)
