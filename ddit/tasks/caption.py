"""Captioning: image -> text. The response slot after an optional instruction is in-filled by masked diffusion
(``ddit.text_sampling``), conditioned on the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .base import Model, TextOptions
from .text import as_list, load_images, text_task_steps


@dataclass
class CaptionOptions(TextOptions):
    """Caption options; ``prompt`` is an instruction before the slot, one for all images or one per image ("": none,
    as the released base checkpoint captions)."""

    prompt: str | list[str] = ""


def caption_steps(model: Model, image, options: CaptionOptions, generator=None,
                  reveal_per_step: int | None = None) -> Iterator:
    """Validate now; return the ``TextStep`` iterator captioning one image or a list of them."""
    images = load_images(image)
    prompts = as_list(options.prompt, "prompt")
    if len(prompts) == 1:
        prompts = prompts * len(images)
    return text_task_steps(model, images, prompts, options, generator, reveal_per_step=reveal_per_step)
