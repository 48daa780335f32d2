"""The model calls the benchmarks make: answering questions and captioning, one batch at a time."""

from __future__ import annotations

import sys
from typing import Any

import torch

from ddit.tasks.answer import SHORT_ANSWER_INSTRUCTION
from ddit.tasks.text import unknown_words

from .batches import Predictor
from .errors import DataError
from .items import Item


def short_answer_for(pipe: Any, asked: bool | str) -> bool:
    """Whether to append the short-answer instruction: as asked, or ("auto") when the model can read its words.
    Asked for by a model that cannot read it is refused, naming the words: its answers would all be empty."""
    unknown = unknown_words(pipe.tokenizer, SHORT_ANSWER_INSTRUCTION)
    if asked is True and unknown:
        raise DataError(f"--short-answer: this model cannot read the short-answer instruction (not in its "
                        f"vocabulary: {', '.join(unknown)}); its answers would be empty. Run with --no-short-answer.")
    if asked == "auto":
        if unknown:
            print(f"warning: this model cannot read the short-answer instruction (not in its vocabulary: "
                  f"{', '.join(unknown)}); answering without it (--short-answer forces it)", file=sys.stderr)
        return not unknown
    return bool(asked)


def answer_predictor(steps: int | None, sampler: str | None, short_answer: bool | str) -> Predictor:
    """Answer each item's question (``prompt``) about its image; None options take the model's defaults;
    ``short_answer`` True, False or "auto" (``short_answer_for``), decided once, at the first batch."""
    decided: list[bool] = []  # the choice, made at the first batch (its note printed once)

    def predict(pipe: Any, items: list[Item], images: list, generator: torch.Generator) -> list[str]:
        if not decided:
            decided.append(short_answer_for(pipe, short_answer))
        out = pipe.answer(images, [item.prompt for item in items], num_inference_steps=steps, sampler=sampler,
                          generator=generator, short_answer=decided[0])
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
