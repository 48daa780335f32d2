"""The model calls the benchmarks make: answering questions and captioning, one batch at a time."""

from __future__ import annotations

from typing import Any

import torch

from .batches import Predictor
from .items import Item


def answer_predictor(steps: int | None, sampler: str | None, short_answer: bool) -> Predictor:
    """Answer each item's question (``prompt``) about its image; None options take the model's defaults."""

    def predict(pipe: Any, items: list[Item], images: list, generator: torch.Generator) -> list[str]:
        out = pipe.answer(images, [item.prompt for item in items], num_inference_steps=steps, sampler=sampler,
                          generator=generator, short_answer=short_answer)
        return [text.strip() for text in out.text]

    return predict


def caption_predictor(steps: int | None, sampler: str | None, prompt: str | None) -> Predictor:
    """Caption each item's image (``prompt``: an instruction, None for the model's own)."""

    def predict(pipe: Any, items: list[Item], images: list, generator: torch.Generator) -> list[str]:
        out = pipe.caption(images, prompt=prompt, num_inference_steps=steps, sampler=sampler, generator=generator)
        return [text.strip() for text in out.text]

    return predict


def answer_options(args: Any) -> dict:
    """The answer settings a run records (None: the model's default)."""
    return {"steps": args.steps, "sampler": args.sampler, "short_answer": args.short_answer}
