"""Per-model sampling defaults, stored with the model (``model_index.json`` -> ``task_defaults``).

Calling a task with no options uses these, so a model folder carries the settings that work best for it. One
options object per task (``ddit.tasks``): ``{"generate": {...}, "caption": {...}, "answer": {...}, "resolution": N}``,
each holding the task's keyword arguments. The class defaults are those of the released D-DiT checkpoints
(docs/design.md §3.4). Folders saved before the tasks had their own options (one flat dict: ``image_steps``,
``caption_length``, ``answer_sampler``, ...) load unchanged: ``FLAT_KEYS`` says where each key went.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .tasks.answer import AnswerOptions
from .tasks.base import SAMPLERS
from .tasks.caption import CaptionOptions
from .tasks.generate import GenerateOptions
from .tasks.score import ScoreOptions

logger = logging.getLogger(__name__)

__all__ = ["FLAT_KEYS", "RELEASED_TASK_DEFAULTS", "SAMPLERS", "TaskDefaults"]  # SAMPLERS: for the CLI's choices

TASKS = {"generate": GenerateOptions, "caption": CaptionOptions, "answer": AnswerOptions, "score": ScoreOptions}
# the keys of the flat format (before per-task options) -> (task, option) or, for the shared ones, several
FLAT_KEYS = {
    "image_steps": [("generate", "num_inference_steps")], "guidance_scale": [("generate", "guidance_scale")],
    "guidance_interval": [("generate", "guidance_interval")],
    "max_sequence_length": [("generate", "max_sequence_length")],
    "caption_prompt": [("caption", "prompt")], "caption_steps": [("caption", "num_inference_steps")],
    "caption_length": [("caption", "max_length")], "caption_sampler": [("caption", "sampler")],
    "caption_threshold": [("caption", "threshold")], "caption_block_length": [("caption", "block_length")],
    "caption_max_new_tokens": [("caption", "max_new_tokens")],
    "question_template": [("answer", "question_template")], "answer_steps": [("answer", "num_inference_steps")],
    "answer_length": [("answer", "max_length")], "answer_sampler": [("answer", "sampler")],
    "answer_threshold": [("answer", "threshold")], "answer_block_length": [("answer", "block_length")],
    "answer_max_new_tokens": [("answer", "max_new_tokens")], "answer_total_length": [("answer", "total_length")],
    "max_prompt_length": [("caption", "max_prompt_length"), ("answer", "max_prompt_length")],
    "eos_early_stop": [("caption", "eos_early_stop"), ("answer", "eos_early_stop")],
    "confidence_threshold": [("caption", "threshold"), ("answer", "threshold")],  # one for both, earlier still
}


@dataclass
class TaskDefaults:
    """Sampling settings of one model: one options object per task, and the image side all tasks share."""

    generate: GenerateOptions = field(default_factory=GenerateOptions)
    caption: CaptionOptions = field(default_factory=CaptionOptions)
    answer: AnswerOptions = field(default_factory=AnswerOptions)
    score: ScoreOptions = field(default_factory=ScoreOptions)
    resolution: int | None = None  # None: transformer sample_size * VAE factor

    @classmethod
    def from_dict(cls, values: dict | None) -> "TaskDefaults":
        """Build from a saved dict (per task, or the flat format of earlier folders), ignoring with a warning the
        keys this version does not know."""
        nested = nest(values)
        unknown = sorted(set(nested) - set(TASKS) - {"resolution"})
        if unknown:
            logger.warning("Ignoring unknown task defaults: %s", ", ".join(unknown))
        tasks = {name: options.from_dict(nested.get(name)) for name, options in TASKS.items()}
        return cls(**tasks, resolution=nested.get("resolution"))

    def to_dict(self) -> dict:
        """Plain dict for ``model_index.json``."""
        return {**{name: getattr(self, name).to_dict() for name in TASKS}, "resolution": self.resolution}


def nest(values: dict | None) -> dict:
    """Saved defaults in the per-task format: a flat dict's keys moved into their tasks (``FLAT_KEYS``); a key set
    both ways keeps its per-task value, and the per-task thresholds win over the older shared one."""
    values = dict(values or {})
    nested = {name: dict(values.pop(name) or {}) for name in TASKS if isinstance(values.get(name), dict)}
    older_last = sorted((k for k in values if k in FLAT_KEYS), key=lambda k: k == "confidence_threshold")
    for key in older_last:
        value = values.pop(key)
        if value is None and key == "confidence_threshold":
            continue
        for task, option in FLAT_KEYS[key]:
            nested.setdefault(task, {}).setdefault(option, value)
    return {**values, **nested}


def combine(saved: dict | None, given: dict | None) -> dict:
    """Saved defaults with a caller's over them (either format), option by option: ``{"caption": {"sampler": ...}}``
    changes the caption's sampler and keeps its other saved options."""
    saved, given = nest(saved), nest(given)
    out = {**saved, **{k: v for k, v in given.items() if k not in TASKS}}
    for task in TASKS:
        if task in saved or task in given:
            out[task] = {**saved.get(task, {}), **given.get(task, {})}
    return out


# The released D-DiT checkpoints (JleeOfficial/dual_diff_sd3_512_base and _sft) ship no task defaults; these are
# the settings of the authors' own sampling code, applied when such a folder is opened (docs/design.md §3.4).
RELEASED_TASK_DEFAULTS = TaskDefaults(
    generate=GenerateOptions(num_inference_steps=28, guidance_scale=7.0, max_sequence_length=256),
    caption=CaptionOptions(prompt="", num_inference_steps=128, max_length=256, sampler="ancestral"),
    answer=AnswerOptions(question_template="Q: {question} A: ", num_inference_steps=32, max_length=128,
                         sampler="ancestral", total_length=128),
    resolution=512,
)
