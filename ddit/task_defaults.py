"""Per-model sampling defaults, stored with the model (``model_index.json`` -> ``task_defaults``).

Calling a task with no options uses these, so a model folder carries the settings that work best
for it. The class defaults are those of the released D-DiT checkpoints (design.md §2).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SAMPLERS = ("ancestral", "confidence")  # the text samplers (``text_scheduler.py``); here so that nothing needs torch
# appended to a question by ``answer(..., short_answer=True)``; the released SFT data and VQA evaluation use it
SHORT_ANSWER_INSTRUCTION = "Answer the question using a single word or phrase."


def append_instruction(question: str, instruction: str = SHORT_ANSWER_INSTRUCTION, sep: str = " ") -> str:
    """``question``, ``sep`` and ``instruction``, unless the instruction is already there (alone if no question).

    The released VQA evaluation joins them with a space; their LLaVA-format training data with a newline.
    """
    if instruction in question:
        return question
    return f"{question}{sep}{instruction}" if question else instruction


@dataclass
class TaskDefaults:
    """Sampling settings of one model, for the three tasks."""

    # text-to-image
    image_steps: int = 28  # Euler steps, SD3's default
    guidance_scale: float = 7.0
    guidance_interval: tuple[float, float] | None = None  # [low, high] sigmas where guidance applies; None: all
    resolution: int | None = None  # None: transformer sample_size * VAE factor
    max_sequence_length: int = 256  # prompt tokens given to the text encoder
    # captioning
    caption_prompt: str = ""  # the base checkpoint captions with no instruction
    caption_steps: int = 128
    caption_length: int = 256
    caption_sampler: str = "ancestral"
    # text decoding (``ddit.text_sampling``), per task; None: the paper's fixed loop of ``*_steps`` steps.
    # threshold (confidence sampler): also commit every token at least this sure; the steps become a maximum
    caption_threshold: float | None = None
    caption_block_length: int | None = None  # decode the slot left to right in blocks of this many tokens
    caption_max_new_tokens: int | None = None  # with a block length: append blocks until an end token, up to this
    # visual question answering
    question_template: str = "Q: {question} A: "  # the SFT checkpoint's format
    answer_steps: int = 32
    answer_length: int = 128  # the answer slot after the question
    answer_sampler: str = "ancestral"
    answer_threshold: float | None = None  # as the caption_ settings above
    answer_block_length: int | None = None
    answer_max_new_tokens: int | None = None
    # set: every answer sequence is this many tokens in total, question included (the released SFT layout);
    # None: the question, then ``answer_length`` tokens
    answer_total_length: int | None = None
    # shared by both text tasks
    max_prompt_length: int = 256  # longer questions are truncated with a warning
    eos_early_stop: bool = False  # end once each row's slot is settled up to an end token (same text, fewer passes)

    @classmethod
    def from_dict(cls, values: dict | None) -> "TaskDefaults":
        """Build from a saved dict, ignoring (with a warning) keys this version does not know."""
        values = dict(values or {})
        old = values.pop("confidence_threshold", None)  # before the per-task thresholds: one for both tasks
        if old is not None:
            values.setdefault("caption_threshold", old)
            values.setdefault("answer_threshold", old)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            logger.warning("Ignoring unknown task defaults: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in values.items() if k in known})

    def text_decoding(self, task: str, sampler: str, threshold: float | None = None, block_length: int | None = None,
                      max_new_tokens: int | None = None, eos_early_stop: bool | None = None) -> dict:
        """The text-loop options of ``task`` ("caption" or "answer"): the given ones, else this model's. A default
        threshold applies to the confidence sampler only (another sampler simply drops it)."""
        def pick(value, name):
            return getattr(self, f"{task}_{name}") if value is None else value

        if sampler == "confidence":
            threshold = pick(threshold, "threshold")
        return {"threshold": threshold, "block_length": pick(block_length, "block_length"),
                "max_new_tokens": pick(max_new_tokens, "max_new_tokens"),
                "eos_early_stop": self.eos_early_stop if eos_early_stop is None else bool(eos_early_stop)}

    def to_dict(self) -> dict:
        """Plain dict for ``model_index.json``."""
        return dataclasses.asdict(self)


# The released D-DiT checkpoints (JleeOfficial/dual_diff_sd3_512_base and _sft) ship no task defaults; these are
# the settings of the authors' own sampling code, applied when such a folder is opened (design.md section 2).
RELEASED_TASK_DEFAULTS = TaskDefaults(
    image_steps=28, guidance_scale=7.0, resolution=512, max_sequence_length=256,
    caption_prompt="", caption_steps=128, caption_length=256, caption_sampler="ancestral",
    question_template="Q: {question} A: ", answer_steps=32, answer_length=128, answer_sampler="ancestral",
    answer_total_length=128, max_prompt_length=256,
)
