"""What the pipeline accepts, stated once: every front end (Python, CLI, app, API) surfaces these messages.

Each check raises ``ValueError`` with a message meant for the person who typed the value.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MAX_STEPS = 1000  # more steps than this is a typo, not a setting
GUIDANCE_RANGE = (0.0, 50.0)  # 1 = no guidance; beyond ~20 images saturate, beyond 50 they are noise
SEED_RANGE = (0, 2**63 - 1)  # what torch.Generator.manual_seed takes without overflow
MAX_TEXT_TOKENS = 4096  # a longer text slot, block or answer is a typo, not a setting


def as_integer(value, name: str) -> int:
    """``value`` as an int when it is a whole number (2 or 2.0), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a whole number, got {value!r}.")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"`{name}` must be a whole number, got {value!r}.")
    return int(value)


def check_steps(steps) -> int:
    """A number of denoising steps: a whole number in 1..MAX_STEPS."""
    steps = as_integer(steps, "num_inference_steps")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"`num_inference_steps` must be between 1 and {MAX_STEPS}, got {steps}.")
    return steps


def check_guidance(scale) -> float:
    """A classifier-free guidance scale: a finite number in GUIDANCE_RANGE."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale):
        raise ValueError(f"`guidance_scale` must be a finite number, got {scale!r}.")
    low, high = GUIDANCE_RANGE
    if not low <= scale <= high:
        raise ValueError(f"`guidance_scale` must be between {low:g} and {high:g} (1 means no guidance), got {scale:g}.")
    return float(scale)


def check_guidance_interval(interval) -> tuple[float, float] | None:
    """A guidance interval: None (guide every step) or [low, high] noise levels with 0 <= low <= high <= 1."""
    if interval is None:
        return None
    try:
        low, high = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(f"`guidance_interval` must be two numbers [low, high] or None, got {interval!r}.") from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"`guidance_interval` must satisfy 0 <= low <= high <= 1 (noise levels), got {interval!r}.")
    return (low, high)


def check_strength(strength) -> float:
    """An image-to-image strength: the share of the steps run, a number in (0, 1]."""
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not 0.0 < strength <= 1.0:
        raise ValueError(f"`strength` must be a number in (0, 1] (the share of the steps run), got {strength!r}.")
    return float(strength)


def steps_run(steps: int, strength: float) -> int:
    """How many of ``steps`` a ``strength`` runs (diffusers' image-to-image rule: the last floor(N s)); a
    ``ValueError`` when that is none."""
    run = min(int(steps * strength), steps)
    if run < 1:
        raise ValueError(f"`strength` {strength:g} of {steps} steps leaves no step to run; raise either.")
    return run


def seeded_generator(seed) -> "torch.Generator":
    """A CPU generator for a user's seed: a whole number in SEED_RANGE."""
    import torch  # here: the checks themselves need no torch (``ddit --help`` reads the task options)

    seed = as_integer(seed, "seed")
    low, high = SEED_RANGE
    if not low <= seed <= high:
        raise ValueError(f"`seed` must be between {low} and {high} (2**63 - 1), got {seed}.")
    return torch.Generator().manual_seed(seed)


def check_text_length(lengths: list[int], texts: list[str], limit: int, what: str, setting: str) -> None:
    """Refuse a text longer than the model reads (it would be cut silently): name its length and the limit.

    ``lengths`` are the texts' token counts as the model would see them.
    """
    for n, text in zip(lengths, texts):
        if n > limit:
            raise ValueError(f"The {what} is {n} tokens long; this model reads at most {limit} ({setting}). "
                             f"Please shorten it (it starts: {text[:40]!r}).")


def check_text_positions(length: int, limit: int | None, what: str) -> None:
    """Refuse a text sequence longer than the text encoder's position table (``limit``; None: no table)."""
    if limit is not None and length > limit:
        raise ValueError(f"{what} would reach {length} tokens; this model's text encoder reads at most {limit} "
                         f"(max_position_embeddings). Use a shorter max_length or max_new_tokens.")
