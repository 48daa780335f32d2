"""ddit: Dual Diffusion (D-DiT) — one transformer for text-to-image, captioning and VQA, by diffusion only."""

from .pipeline import (
    DualDiffusionImageOutput,
    DualDiffusionPipeline,
    DualDiffusionTextOutput,
    ImageStep,
    TextStep,
)
from .task_defaults import TaskDefaults
from .text_scheduler import MaskedDiffusionScheduler
from .transformer import DualDiffusionTransformer

__all__ = [
    "DualDiffusionImageOutput",
    "DualDiffusionPipeline",
    "DualDiffusionTextOutput",
    "DualDiffusionTransformer",
    "ImageStep",
    "MaskedDiffusionScheduler",
    "TaskDefaults",
    "TextStep",
]
