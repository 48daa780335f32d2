"""What every task shares: options merged over the model's saved defaults, and the model a loop may use."""

from __future__ import annotations

import dataclasses
import logging
import numbers
from dataclasses import dataclass
from typing import Any, Callable

from ..checks import MAX_TEXT_TOKENS, as_integer, check_steps

logger = logging.getLogger(__name__)

SAMPLERS = ("ancestral", "confidence", "remask")  # the text samplers (``ddit.text_scheduler``)
CONFIDENCE_SAMPLERS = ("confidence", "remask")  # reveal most confident first; ``threshold`` applies


@dataclass
class TaskOptions:
    """Base of a task's options: each field is a keyword of the task's methods (``iter_<task>`` and the one-call
    method), and the model's saved defaults for the task are an instance."""

    @classmethod
    def from_dict(cls, values: dict | None, where: str = "task_defaults"):
        """Saved defaults: the keys this version knows (others are ignored with a warning naming them)."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            logger.warning("Ignoring unknown %s defaults in %s: %s", cls.task(), where, ", ".join(unknown))
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def task(cls) -> str:
        return cls.__name__.removesuffix("Options").lower()

    def merged(self, **given):
        """These defaults with the caller's values over them (None: unset), checked. Unknown names are refused."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise TypeError(f"{self.task()} got unknown option(s) {', '.join(unknown)}; it takes: {', '.join(names)}.")
        return dataclasses.replace(self, **{k: v for k, v in given.items() if v is not None}).checked()

    def checked(self):
        """A copy with every field checked (``ValueError`` naming the field) and normalised (2.0 -> 2)."""
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TextOptions(TaskOptions):
    """How a text task decodes (all unset beyond the steps: the paper's fixed loop, ``ddit.text_sampling``).

    ``sampler``: ``"ancestral"`` (the paper's), ``"confidence"`` (most confident first) or ``"remask"`` (as
    confidence, and committed tokens can be revised: each step sends the least confident of them back to the mask,
    ``ddit.text_scheduler``). ``threshold`` (confidence samplers) also commits every token at least this sure and
    ends a block once nothing in it is masked; ``block_length`` decodes the slot left to right in blocks;
    ``max_new_tokens`` (with a block length) appends blocks until the text ends; ``eos_early_stop`` ends once every
    row has ended.
    """

    num_inference_steps: int = 128
    max_length: int = 256  # the response slot, in tokens
    sampler: str = "ancestral"
    threshold: float | None = None
    block_length: int | None = None
    max_new_tokens: int | None = None
    eos_early_stop: bool = False
    max_prompt_length: int = 256  # longer prompts (question or instruction in the template) are refused

    def merged(self, **given):
        """As ``TaskOptions.merged``; a saved threshold applies to the confidence sampler only (with another
        sampler it is dropped, so a default never breaks a sampler the caller picks)."""
        base = self
        if (given.get("sampler") or self.sampler) not in CONFIDENCE_SAMPLERS and given.get("threshold") is None:
            base = dataclasses.replace(self, threshold=None)
        return TaskOptions.merged(base, **given)

    def checked(self):
        steps = check_steps(self.num_inference_steps)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {self.sampler!r}; choose one of {SAMPLERS}.")
        max_length = _tokens(self.max_length, "max_length")
        threshold, block, most = self.threshold, self.block_length, self.max_new_tokens
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 < threshold <= 1.0:
                raise ValueError(f"`threshold` must be a probability in (0, 1] or None, got {threshold!r}.")
            if self.sampler not in CONFIDENCE_SAMPLERS:
                raise ValueError(f"`threshold` needs the confidence sampler (sampler='confidence' or 'remask'), not "
                                 f"{self.sampler!r}.")
            threshold = float(threshold)
        block = None if block is None else _tokens(block, "block_length")
        if most is not None:
            most = as_integer(most, "max_new_tokens")
            if block is None:
                raise ValueError("`max_new_tokens` grows the answer block by block: set `block_length` too.")
            if not max_length <= most <= MAX_TEXT_TOKENS:
                raise ValueError(f"`max_new_tokens` must be between the slot length {max_length} and "
                                 f"{MAX_TEXT_TOKENS}, got {most}.")
        return dataclasses.replace(self, num_inference_steps=steps, max_length=max_length, threshold=threshold,
                                   block_length=block, max_new_tokens=most, eos_early_stop=bool(self.eos_early_stop),
                                   max_prompt_length=_tokens(self.max_prompt_length, "max_prompt_length"))

    @property
    def fixed(self) -> bool:
        """True for the paper's loop: exactly ``num_inference_steps`` steps over a fixed slot, kept bit for bit."""
        return (self.threshold, self.block_length, self.max_new_tokens, self.eos_early_stop) == (None, None, None,
                                                                                                  False)


def _tokens(value, name: str) -> int:
    value = as_integer(value, name)
    if not 1 <= value <= MAX_TEXT_TOKENS:
        raise ValueError(f"`{name}` must be between 1 and {MAX_TEXT_TOKENS}, got {value}.")
    return value


@dataclass(frozen=True)
class Model:
    """Everything a task's loop may use of the pipeline, handed to it explicitly (loops never read the pipeline).

    ``stopped()`` is True once the caller asked the run to stop (``pipe.interrupt``, diffusers' convention).
    """

    transformer: Any
    scheduler: Any
    tokenizer: Any
    device: Any
    resolution: int  # default image side in pixels
    vae_scale_factor: int
    mask_token_id: int
    end_token_id: int
    encode_tokens: Callable  # token ids (b, l) -> text-encoder states (b, l, d)
    encode_prompt: Callable  # (prompts, max_sequence_length) -> states (b, l, d), each prompt padded to the length
    encode_image: Callable  # (loaded images, height=None, width=None) -> normalised latents (b, c, h, w)
    max_text_positions: int | None  # the text encoder's position table (None: no limit)
    stopped: Callable[[], bool]
