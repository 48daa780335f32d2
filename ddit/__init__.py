"""ddit: Dual Diffusion (D-DiT) — one transformer for text-to-image, captioning and VQA, by diffusion only; and what
only a dual diffusion model can do: in-painting, in-filling, revisable text and scoring with its own likelihoods.

The public names load on first use (PEP 562), so ``ddit --help`` and other light uses never import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DualDiffusionImageOutput": "pipeline", "DualDiffusionPipeline": "pipeline", "DualDiffusionTextOutput": "pipeline",
    "ImageStep": "image_sampling", "TextStep": "text_sampling", "TaskDefaults": "task_defaults",
    "MaskedDiffusionScheduler": "text_scheduler", "DualDiffusionTransformer": "transformer",
}
BUNDLED_MODEL = "ddit-shapes"  # the name ``from_pretrained`` resolves to the bundled Shapes-World model (bundled.py)

__all__ = sorted(_EXPORTS) + ["BUNDLED_MODEL"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'ddit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
