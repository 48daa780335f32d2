"""Visual question answering: image + question -> text. The question, in the model's template, stays fixed; the
answer slot after it is in-filled by masked diffusion (``ddit.text_sampling``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

from ..checks import MAX_TEXT_TOKENS, as_integer
from .base import Model, TextOptions
from .text import as_list, load_images, text_task_steps

# appended to a question by ``short_answer=True``; the released SFT data and VQA evaluation use it
SHORT_ANSWER_INSTRUCTION = "Answer the question using a single word or phrase."


def append_instruction(question: str, instruction: str = SHORT_ANSWER_INSTRUCTION, sep: str = " ") -> str:
    """``question``, ``sep`` and ``instruction``, unless the instruction is already there (alone if no question).

    The released VQA evaluation joins them with a space; their LLaVA-format training data with a newline.
    """
    if instruction in question:
        return question
    return f"{question}{sep}{instruction}" if question else instruction


@dataclass
class AnswerOptions(TextOptions):
    """Answer options. ``question_template`` holds ``{question}``; ``total_length`` set: every sequence is that many
    tokens in total, question included (the released SFT layout), unless the caller gives ``max_length``;
    ``short_answer`` appends ``SHORT_ANSWER_INSTRUCTION`` (the released checkpoints' short-answer prompt)."""

    num_inference_steps: int = 32
    max_length: int = 128
    question_template: str = "Q: {question} A: "
    total_length: int | None = None
    short_answer: bool = False

    def merged(self, **given):
        """As ``TextOptions.merged``; a ``max_length`` the caller gives replaces a saved ``total_length``."""
        base = self
        if given.get("max_length") is not None and given.get("total_length") is None:
            base = dataclasses.replace(self, total_length=None)
        return TextOptions.merged(base, **given)

    def checked(self):
        checked = TextOptions.checked(self)
        if "{question}" not in str(self.question_template):
            raise ValueError(f"`question_template` must contain {{question}}, got {self.question_template!r}.")
        total = self.total_length
        if total is not None:
            total = as_integer(total, "total_length")
            if not 2 <= total <= MAX_TEXT_TOKENS:
                raise ValueError(f"`total_length` must be between 2 and {MAX_TEXT_TOKENS}, got {total}.")
        return dataclasses.replace(checked, total_length=total, short_answer=bool(self.short_answer))


def answer_steps(model: Model, image, question, options: AnswerOptions, generator=None,
                 reveal_per_step: int | None = None) -> Iterator:
    """Validate now; return the ``TextStep`` iterator answering question(s) about image(s) (one image for all
    questions, or one per question)."""
    questions = as_list(question, "question")
    if not all(isinstance(q, str) and q.strip() for q in questions):
        raise ValueError("`question` is empty; ask something about the image.")
    questions = [append_instruction(q.strip()) if options.short_answer else q.strip() for q in questions]
    prompts = [options.question_template.format(question=q) for q in questions]
    images = None if image is None else load_images(image)
    slot = dataclasses.replace(options, max_length=1) if options.total_length else options
    return text_task_steps(model, images, prompts, slot, generator, total_length=options.total_length,
                           reveal_per_step=reveal_per_step)
