"""The text sampling loop: a response slot in-filled by masked diffusion, conditioned on an image (paper §3.3;
docs/design.md §2.6-§2.7).

How the loop decodes is set by :class:`ddit.tasks.base.TextOptions` (diffusers' names; all unset: the paper's loop
of exactly ``num_inference_steps`` steps over a fixed slot):

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

from .masked_diffusion import forbid, subs_log_probs
from .text_layout import TextBatch
from .text_scheduler import MaskedDiffusionScheduler


@dataclass
class TextStep:
    """State after one text step (all (b, l); l grows when ``max_new_tokens`` appends a block): tokens, which
    are still masked, which were revealed now; ``confidence``: the probability the model gave each sampled token
    when it was committed (NaN where nothing was sampled: prompt, given words, masks); ``remasked``: tokens sent
    back to the mask now (the ``"remask"`` sampler)."""

    step: int  # parts of one step (``reveal_per_step``) share its number
    num_steps: int  # the most steps this slot can take (steps x blocks); fewer with threshold or early stop
    token_ids: torch.LongTensor
    masked: torch.BoolTensor
    revealed: torch.BoolTensor
    response_mask: torch.BoolTensor
    reused_prediction: bool  # True when nothing changed and the last forward pass was reused
    forward_passes: int = 0  # transformer calls so far, this step's included
    block: int = 0  # the block being decoded (0 without block_length)
    confidence: torch.Tensor | None = None
    remasked: torch.BoolTensor | None = None


def longest(options, batch: TextBatch) -> int:
    """The most text tokens a row can reach: the layout's, plus the blocks ``max_new_tokens`` may append."""
    length = batch.input_ids.shape[1]
    if options.max_new_tokens is None:
        return length
    shortest_slot = int(batch.response_mask.sum(-1).min())
    return length + options.block_length * math.ceil(max(0, options.max_new_tokens - shortest_slot) /
                                                      options.block_length)


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


def _finished(x: torch.Tensor, response: torch.Tensor, options, mask_id: int, end_id: int) -> bool:
    """Early stop: every row is resolved, or has nothing masked and may not grow (no end token, no room)."""
    full = options.max_new_tokens is None or response.sum(-1) >= options.max_new_tokens  # (b,)
    stuck = full & ~(x == mask_id).any(-1)
    return bool((resolved(x, response, mask_id, end_id) | stuck).all())


def _grow(x: torch.Tensor, response: torch.Tensor, options, mask_id: int, end_id: int):
    """Append a block: masks for rows with no end token and room under ``max_new_tokens``, end tokens elsewhere.
    Returns the new (x, response), or None when no row needs more room."""
    if options.max_new_tokens is None:
        return None
    ended = (response & (x == end_id)).any(-1, keepdim=True)  # (b, 1)
    room = options.max_new_tokens - response.sum(-1, keepdim=True)  # (b, 1)
    new = ~ended & (torch.arange(options.block_length, device=x.device) < room)  # (b, block_length)
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


class _Decoder:
    """The state of one text run: the tokens, the slot, the last prediction and the passes so far."""

    def __init__(self, model, batch: TextBatch, latents, options, generator, reuse_predictions: bool,
                 reveal_per_step: int | None, never: tuple[int, ...] = ()):
        self.model, self.latents, self.options, self.generator = model, latents, options, generator
        self.never = never
        self.reuse, self.reveal_per_step = reuse_predictions, reveal_per_step
        self.x, self.response = batch.input_ids.to(model.device), batch.response_mask.to(model.device)
        self.scheduler = MaskedDiffusionScheduler(sampler=options.sampler, confidence_threshold=options.threshold)
        self.scheduler.set_timesteps(options.num_inference_steps)
        self.log_probs, self.changed, self.passes, self.count, self.block = None, True, 0, 0, 0
        self.finished = False  # ended early: every row resolved (``eos_early_stop``)
        self.sampled = self.x == model.mask_token_id  # what the sampler fills (and "remask" may revise)
        self.confidence = torch.full(self.x.shape, float("nan"), device=self.x.device)

    def state(self, revealed, most: int, reused: bool, remasked=None) -> TextStep:
        return TextStep(step=self.count, num_steps=most, token_ids=self.x, masked=self.x == self.model.mask_token_id,
                        revealed=revealed, response_mask=self.response, reused_prediction=reused,
                        forward_passes=self.passes, block=self.block, confidence=self.confidence,
                        remasked=torch.zeros_like(revealed) if remasked is None else remasked)

    def grow(self, x: torch.Tensor, response: torch.Tensor) -> None:
        """Take the tokens and slot with a block appended (``_grow``)."""
        added = x.shape[1] - self.x.shape[1]
        pad = torch.full((x.shape[0], added), float("nan"), device=x.device)
        self.sampled = torch.cat([self.sampled, x[:, -added:] == self.model.mask_token_id], -1)
        self.confidence = torch.cat([self.confidence, pad], -1)
        self.x, self.response, self.changed = x, response, True

    def predict(self) -> bool:
        """p(x0 | x_t) for this step; False when the last one still holds ("ddpm_cache": nothing changed, so it is
        the same; nothing masked, so it is not needed)."""
        mask_id = self.model.mask_token_id
        if self.reuse and not (self.changed and (self.x == mask_id).any()):
            return False
        zero = torch.zeros(self.x.shape[0], device=self.model.device)
        logits = self.model.transformer(self.latents, self.model.encode_tokens(self.x), zero,
                                        mask_token_id=mask_id).logits
        if self.never:  # tokens no masked position may become, set aside as SUBS sets aside the mask token
            logits = forbid(logits, self.never)
        self.log_probs, self.passes = subs_log_probs(logits, self.x, mask_id), self.passes + 1
        return True

    def step(self, i: int, active: torch.Tensor, most: int) -> Iterator[TextStep]:
        """One sampler step over the ``active`` positions (the scheduler sees the rest as end tokens; the model saw
        them masked); its states, the parts first when its reveals are paced."""
        mask_id, end_id = self.model.mask_token_id, self.model.end_token_id
        reused = not self.predict()
        out = self.scheduler.step(self.log_probs, i, torch.where(active, self.x, end_id), mask_id, self.generator,
                                  confidence=self.confidence, revisable=self.sampled & active)
        revealed = out.revealed
        confidence = self.log_probs.gather(-1, out.prev_sample.clamp(max=self.log_probs.shape[-1] - 1)
                                           .unsqueeze(-1)).squeeze(-1).exp()
        if self.reveal_per_step is not None:  # for watching: commit this step's tokens a few at a time
            *parts, revealed = in_parts(out.revealed, confidence, self.reveal_per_step)
            for part in parts:
                self.x = torch.where(part, out.prev_sample, self.x)
                self.confidence = torch.where(part, confidence, self.confidence)
                yield self.state(part, most, True)
        self.x = torch.where(out.revealed | out.remasked, out.prev_sample, self.x)
        self.confidence = torch.where(out.revealed, confidence, self.confidence)
        self.confidence = torch.where(out.remasked, float("nan"), self.confidence)
        self.changed = bool((out.revealed | out.remasked).any())
        self.finished = self.options.eos_early_stop and _finished(self.x, self.response, self.options, mask_id, end_id)
        if self.finished:
            left = self.x == mask_id
            self.x, revealed = torch.where(left, end_id, self.x), revealed | left
        yield self.state(revealed, most, reused, out.remasked)
        self.count += 1


@torch.no_grad()
def text_steps(model, batch: TextBatch, images, options, generator=None, reuse_predictions: bool = True,
               reveal_per_step: int | None = None, never: tuple[int, ...] = ()) -> Iterator[TextStep]:
    """In-fill the response slots of ``batch`` step by step, conditioned on ``images`` (None: the null image).

    ``model`` is a :class:`ddit.tasks.base.Model`; ``options`` a checked :class:`ddit.tasks.base.TextOptions`;
    ``never``: token ids no masked position may take (in-filling: the end token, so a blank is never left empty).
    """
    rows = batch.input_ids.shape[0]
    latents = None if images is None else model.encode_image(images).expand(rows, -1, -1, -1)
    run = _Decoder(model, batch, latents, options, generator, reuse_predictions, reveal_per_step, never)
    steps, mask_id = options.num_inference_steps, model.mask_token_id
    while True:
        active = _active(run.response, run.block, options.block_length)
        most = steps * _blocks(run.response, options.block_length)  # the bound each state reports as num_steps
        for i in range(steps):
            if model.stopped() or not (options.fixed or (active & (run.x == mask_id)).any()):
                break
            yield from run.step(i, active, most)
            if run.finished:
                return
        if model.stopped():
            return
        run.block += 1
        if not (run.response & (run.x == mask_id)).any():
            grown = _grow(run.x, run.response, options, mask_id, model.end_token_id)
            if grown is None:
                return
            run.grow(*grown)
