"""The text sampling loop: a response slot in-filled by masked diffusion, conditioned on an image (§3.1).

How the loop decodes is set by :class:`TextDecoding` (diffusers' names; all unset: the paper's loop of exactly
``num_inference_steps`` steps over a fixed slot):

- ``threshold`` (confidence sampler; Fast-dLLM): each step also commits every masked token whose most likely
  token has probability >= ``threshold`` (the scheduled top-k still commits at least one), and a block ends as
  soon as nothing in it is masked, so ``num_inference_steps`` is the most steps a block takes.
- ``eos_early_stop``: end as soon as every row is resolved, i.e. all its masked positions lie after an end token
  it has committed; they are filled with the end token. The decoded text is the same, with fewer passes.
- ``block_length`` (semi-autoregressive, LLaDA): the slot is decoded left to right in blocks of this many
  tokens; later blocks stay masked and the model sees them masked.
- ``max_new_tokens`` (with ``block_length``): once the slot is done and a row has no end token, another block
  of masks is appended (rows that ended get end tokens), until a row has this many response tokens.

Glossary: b - batch, l - text tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from .masked_diffusion import subs_log_probs
from .text_layout import TextBatch
from .text_scheduler import MaskedDiffusionScheduler


@dataclass
class TextStep:
    """State after one text step (all (b, l); l grows when ``max_new_tokens`` appends a block): tokens, which
    are still masked, which were revealed now."""

    step: int  # parts of one step (``reveal_per_step``) share its number
    num_steps: int  # the most steps this slot can take (steps x blocks); fewer with threshold or early stop
    token_ids: torch.LongTensor
    masked: torch.BoolTensor
    revealed: torch.BoolTensor
    response_mask: torch.BoolTensor
    reused_prediction: bool  # True when nothing changed and the last forward pass was reused
    forward_passes: int = 0  # transformer calls so far, this step's included
    block: int = 0  # the block being decoded (0 without block_length)


@dataclass(frozen=True)
class TextDecoding:
    """How the loop decodes (see the module docstring); all unset is the paper's fixed loop."""

    threshold: float | None = None
    block_length: int | None = None
    max_new_tokens: int | None = None
    eos_early_stop: bool = False

    @property
    def fixed(self) -> bool:
        """True for the paper's loop: exactly ``num_inference_steps`` steps, kept bit for bit."""
        return self == TextDecoding()

    def longest(self, batch: TextBatch) -> int:
        """The most text tokens a row can reach: the layout's, plus the blocks ``max_new_tokens`` may append."""
        length = batch.input_ids.shape[1]
        if self.max_new_tokens is None:
            return length
        shortest_slot = int(batch.response_mask.sum(-1).min())
        return length + self.block_length * math.ceil(max(0, self.max_new_tokens - shortest_slot) / self.block_length)


def _blocks(response: torch.Tensor, block_length: int | None) -> int:
    """How many blocks the slot of the longest row spans."""
    return 1 if block_length is None else math.ceil(int(response.sum(-1).max()) / block_length)


def _active(response: torch.Tensor, block: int, block_length: int | None) -> torch.Tensor:
    """(b, l): the response positions block ``block`` may reveal, the slot up to its end (earlier blocks are done,
    except a row's tail left over when its slot was shorter than others' and a block was appended)."""
    if block_length is None:
        return response
    slot_index = response.long().cumsum(-1) - 1  # (b, l): 0 at each row's first response position
    return response & (slot_index < (block + 1) * block_length)


def resolved(x: torch.Tensor, response: torch.Tensor, mask_id: int, end_id: int) -> torch.Tensor:
    """(b,): True where the row has committed an end token and every masked position lies after it."""
    position = torch.arange(x.shape[1], device=x.device)
    first_end = torch.where(response & (x == end_id), position, x.shape[1]).min(-1, keepdim=True).values  # (b, 1)
    return (first_end.squeeze(-1) < x.shape[1]) & ~((x == mask_id) & (position < first_end)).any(-1)


def _finished(x: torch.Tensor, response: torch.Tensor, decoding: TextDecoding, mask_id: int, end_id: int) -> bool:
    """Early stop: every row is resolved, or has nothing masked and may not grow (no end token, no room)."""
    full = decoding.max_new_tokens is None or response.sum(-1) >= decoding.max_new_tokens  # (b,)
    stuck = full & ~(x == mask_id).any(-1)
    return bool((resolved(x, response, mask_id, end_id) | stuck).all())


def _grow(x: torch.Tensor, response: torch.Tensor, decoding: TextDecoding, mask_id: int, end_id: int):
    """Append a block: masks for rows with no end token and room under ``max_new_tokens``, end tokens elsewhere.
    Returns the new (x, response), or None when no row needs more room."""
    if decoding.max_new_tokens is None:
        return None
    ended = (response & (x == end_id)).any(-1, keepdim=True)  # (b, 1)
    room = decoding.max_new_tokens - response.sum(-1, keepdim=True)  # (b, 1)
    new = ~ended & (torch.arange(decoding.block_length, device=x.device) < room)  # (b, block_length)
    if not new.any():
        return None
    tail = torch.where(new, torch.full_like(new, mask_id, dtype=x.dtype), torch.full_like(new, end_id, dtype=x.dtype))
    return torch.cat([x, tail], -1), torch.cat([response, torch.ones_like(new)], -1)


def in_parts(revealed: torch.Tensor, confidence: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Split one step's ``revealed`` (b, l) into successive masks of at most ``size`` positions per row, most
    confident first; their union is ``revealed`` (one part when no row reveals more than ``size``)."""
    score = torch.where(revealed, confidence, torch.full_like(confidence, -float("inf")))
    rank = score.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)  # 0 = most confident
    parts = max(1, math.ceil(int(revealed.sum(-1).max()) / size))
    return [revealed & (rank >= k * size) & (rank < (k + 1) * size) for k in range(parts)]


@torch.no_grad()
def text_steps(pipe, batch: TextBatch, images, steps: int, sampler: str, generator, decoding: TextDecoding,
               reuse_predictions: bool, reveal_per_step: int | None = None) -> Iterator[TextStep]:
    """In-fill the response slots of ``batch`` step by step, conditioned on ``images`` (None: the null image)."""
    latents = None if images is None else pipe.encode_image(images).expand(batch.input_ids.shape[0], -1, -1, -1)
    scheduler = MaskedDiffusionScheduler(sampler=sampler, confidence_threshold=decoding.threshold)
    scheduler.set_timesteps(steps)
    device, mask_id, end_id = pipe._execution_device, pipe.mask_token_id, pipe.end_token_id
    x, response = batch.input_ids.to(device), batch.response_mask.to(device)
    zero = torch.zeros(x.shape[0], device=device)
    log_probs, changed, passes, count, block = None, True, 0, 0, 0
    pipe._interrupt = False
    while True:
        active = _active(response, block, decoding.block_length)
        most = steps * _blocks(response, decoding.block_length)  # the bound each state reports as num_steps
        for i in range(steps):
            if pipe._interrupt or not (decoding.fixed or (active & (x == mask_id)).any()):
                break
            # "ddpm_cache": nothing changed, so p(x0 | x_t) is the same; nothing masked, so it is not needed
            reused = reuse_predictions and not (changed and (x == mask_id).any())
            if not reused:
                logits = pipe.transformer(latents, pipe.encode_tokens(x), zero, mask_token_id=mask_id).logits
                log_probs, passes = subs_log_probs(logits, x, mask_id), passes + 1
            # the scheduler sees only this block's masks (the rest as end tokens); the model saw them all masked
            out = scheduler.step(log_probs, i, torch.where(active, x, end_id), mask_id, generator)
            if reveal_per_step is not None:  # for watching: commit this step's tokens a few at a time
                confidence = log_probs.gather(-1, out.prev_sample.unsqueeze(-1)).squeeze(-1)
                parts = in_parts(out.revealed, confidence, reveal_per_step)
                for part in parts[:-1]:
                    x = torch.where(part, out.prev_sample, x)
                    yield TextStep(step=count, num_steps=most, token_ids=x, masked=x == mask_id, revealed=part,
                                   response_mask=response, reused_prediction=True, forward_passes=passes, block=block)
            x, revealed = torch.where(out.revealed, out.prev_sample, x), out.revealed
            changed = bool(revealed.any())
            if reveal_per_step is not None:
                revealed = parts[-1]  # the earlier parts were yielded above
            finished = decoding.eos_early_stop and _finished(x, response, decoding, mask_id, end_id)
            if finished:
                left = x == mask_id
                x, revealed = torch.where(left, end_id, x), revealed | left
            yield TextStep(step=count, num_steps=most, token_ids=x, masked=x == mask_id, revealed=revealed,
                           response_mask=response, reused_prediction=reused, forward_passes=passes, block=block)
            count += 1
            if finished:
                return
        if pipe._interrupt:
            return
        block += 1
        if not (response & (x == mask_id)).any():
            grown = _grow(x, response, decoding, mask_id, end_id)
            if grown is None:
                return
            (x, response), changed = grown, True
