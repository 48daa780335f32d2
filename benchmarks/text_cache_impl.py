"""Reuse across text steps: what one text step can carry to the next (dLLM-Cache / Fast-dLLM style).

In the text tasks the image is clean (timestep 0) and fixed, and between two steps only the tokens just
revealed change. Two caches approximate a step from earlier ones; each refreshes fully every ``k`` calls:

- :class:`ImageStreamCache`: a refresh runs the full transformer and records, per joint block, the image
  stream's attention keys and values (the outputs of ``attn.to_k`` / ``attn.to_v``, which the joint attention
  uses as they are: D-DiT has no q/k norm). Other calls run the text stream alone: per block its modulation and
  norm, its q/k/v, attention over [cached image K/V ; fresh text K/V], its output projection and feed-forward,
  then the text head; the image stream is skipped. Block 0's image K/V never go stale (its image input is the
  patch embedding alone); later blocks' do, a little, because the image stream attends to the text. With a fresh
  cache the text-only path computes what the full forward computes (equal up to float rounding).
- :class:`EncoderCache` (BERT encoders): a bidirectional encoder's states of unchanged tokens change whenever
  another token is revealed, so keeping them is an approximation. A refresh runs the whole encoder and records
  each layer's keys and values; other calls recompute only the tokens that changed since the previous call
  (embedding, then per layer their q/k/v, attention over the layer's cached K/V updated at their positions,
  and the feed-forward); the other tokens keep their cached states.

:class:`TextStepCache` puts both behind one call for the text loop, ``logits(x)``; intervals of 1 run exactly
the pipeline's forward (no hooks). ``benchmarks/text_cache.py`` measures speed and accuracy. On the bundled
model no setting met the bar of >= 1.5x faster at <= 1 point lost (captions, 8 and 16 steps, batch 1 and 32):
the pipeline does not use these caches, so this module lives beside its benchmark, out of the ``ddit`` package,
as the measured, tested record (``tests/test_text_cache.py``).

Glossary: b - batch, n - image tokens, l - text tokens, k - changed tokens per row (padded to the most in a
row), h - heads, e - head dim, d - width, v - vocabulary.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.attention_processor import JointAttnProcessor2_0

from ddit.masked_diffusion import never_the_mask


@contextmanager
def _recording(modules: list[nn.Module]):
    """Yield a dict that, after the block, maps each module's index in ``modules`` to its (last) output."""
    outputs: dict[int, torch.Tensor] = {}

    def hook(index):
        return lambda _module, _inputs, output: outputs.__setitem__(index, output)

    handles = [module.register_forward_hook(hook(i)) for i, module in enumerate(modules)]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(b, l, d) -> (b, h, l, e)."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


# ---------------------------------------------------------------------------------------------- image stream
def _text_block(block: nn.Module, context: torch.Tensor, image_k: torch.Tensor, image_v: torch.Tensor,
                modulation: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The text stream of one diffusers ``JointTransformerBlock`` (with ``JointAttnProcessor2_0``), the image's
    keys/values (b, h, n, e) given: context (b, l, d) -> (b, l, d)."""
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation  # each (b, d)
    attn = block.attn
    norm = block.norm1_context.norm(context) * (1 + scale_msa[:, None]) + shift_msa[:, None]
    q, k, v = (_heads(proj(norm), attn.heads) for proj in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))
    out = F.scaled_dot_product_attention(q, torch.cat([image_k, k], 2), torch.cat([image_v, v], 2))  # (b, h, l, e)
    context = context + gate_msa.unsqueeze(1) * attn.to_add_out(out.transpose(1, 2).flatten(2))
    norm = block.norm2_context(context) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
    return context + gate_mlp.unsqueeze(1) * block.ff_context(norm)


def text_head(transformer: nn.Module, context: torch.Tensor, mask_token_id: int | None) -> torch.Tensor:
    """The transformer's text head, as in its ``forward``: (b, l, d) -> logits (b, l, v), mask logit -inf."""
    logits = transformer.text_proj_out(transformer.text_norm_out(context))
    mask_token_id = transformer.config.mask_token_id if mask_token_id is None else mask_token_id
    if mask_token_id is not None:
        logits = never_the_mask(logits, mask_token_id)
    return logits


class ImageStreamCache:
    """Per-block image keys/values from the last full forward, and the text-only forward that uses them."""

    def __init__(self, transformer: nn.Module):
        for block in transformer.transformer_blocks:
            attn = block.attn
            if not isinstance(attn.processor, JointAttnProcessor2_0) or attn.norm_k is not None:
                raise ValueError("ImageStreamCache needs diffusers' JointAttnProcessor2_0 without q/k norm.")
        self.transformer = transformer
        self.keys: list[torch.Tensor] = []  # per block (b, h, n, e)
        self.values: list[torch.Tensor] = []
        self.modulation: list[tuple[torch.Tensor, ...]] = []  # per block, the text stream's 6 x (b, d)

    @property
    def ready(self) -> bool:
        return bool(self.keys)

    @torch.no_grad()
    def refresh(self, latents: torch.Tensor | None, states: torch.Tensor, mask_token_id: int | None = None):
        """Full forward at timestep 0 (text-encoder ``states`` (b, l, j)); records the image K/V; logits (b, l, v)."""
        t = self.transformer
        blocks = t.transformer_blocks
        zero = torch.zeros(states.shape[0], device=states.device)
        with _recording([m for block in blocks for m in (block.attn.to_k, block.attn.to_v)]) as out:
            logits = t(latents, states, zero, mask_token_id=mask_token_id).logits
        self.keys = [_heads(out[2 * i], block.attn.heads) for i, block in enumerate(blocks)]
        self.values = [_heads(out[2 * i + 1], block.attn.heads) for i, block in enumerate(blocks)]
        temb = t.time_text_embed(zero, states.dtype)  # (b, d): the same at every text step (timestep 0)
        self.modulation = [block.norm1_context.linear(block.norm1_context.silu(temb)).chunk(6, dim=1)
                           for block in blocks]
        return logits

    @torch.no_grad()
    def text_only(self, states: torch.Tensor, mask_token_id: int | None = None) -> torch.Tensor:
        """Logits (b, l, v) from the text stream alone, over the cached image K/V."""
        if not self.ready or self.keys[0].shape[0] != states.shape[0]:
            raise RuntimeError("ImageStreamCache.text_only needs a refresh with this batch first.")
        t = self.transformer
        context = t.context_embedder(states)  # (b, l, d)
        for block, k, v, modulation in zip(t.transformer_blocks, self.keys, self.values, self.modulation):
            context = _text_block(block, context, k, v, modulation)
        return text_head(t, context, mask_token_id)


# ---------------------------------------------------------------------------------------------- text encoder
def _changed_positions(changed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, l) bool -> positions (b, k), changed ones first in each row, and which of them changed (b, k)."""
    k = int(changed.sum(-1).max())
    index = torch.argsort((~changed).to(torch.int8), dim=-1, stable=True)[:, :k]
    return index, torch.gather(changed, 1, index)


def _put_rows(table: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table`` (b, l, d) with ``rows`` (b, k, d) written at ``index`` (b, k) where ``valid``."""
    where = index.unsqueeze(-1).expand(-1, -1, table.shape[-1])
    rows = torch.where(valid.unsqueeze(-1), rows, torch.gather(table, 1, where))
    return table.scatter(1, where, rows)


class EncoderCache:
    """A BERT encoder's per-layer keys/values and output states, updated at the tokens that changed."""

    def __init__(self, encoder: nn.Module):
        if not (hasattr(encoder, "embeddings") and hasattr(encoder, "encoder")
                and hasattr(encoder.encoder.layer[0].attention, "self")):
            raise ValueError(f"EncoderCache supports BERT encoders, not {type(encoder).__name__}.")
        self.encoder = encoder
        self.ids: torch.Tensor | None = None  # (b, l): the tokens the cached states belong to
        self.states: torch.Tensor | None = None  # (b, l, d)
        self.keys: list[torch.Tensor] = []  # per layer (b, l, d)
        self.values: list[torch.Tensor] = []

    @torch.no_grad()
    def refresh(self, ids: torch.Tensor) -> torch.Tensor:
        """The whole encoder on ``ids`` (b, l), recording each layer's keys/values; states (b, l, d)."""
        layers = [layer.attention.self for layer in self.encoder.encoder.layer]
        with _recording([m for layer in layers for m in (layer.key, layer.value)]) as out:
            self.states = self.encoder(input_ids=ids).last_hidden_state
        self.keys = [out[2 * i] for i in range(len(layers))]
        self.values = [out[2 * i + 1] for i in range(len(layers))]
        self.ids = ids
        return self.states

    @torch.no_grad()
    def update(self, ids: torch.Tensor) -> torch.Tensor:
        """States (b, l, d) for ``ids``: the tokens that differ from the cached ones recomputed, the rest kept."""
        if self.ids is None or self.ids.shape != ids.shape:
            return self.refresh(ids)
        changed = ids != self.ids
        if not changed.any():
            return self.states
        index, valid = _changed_positions(changed)  # (b, k)
        hidden = self.encoder.embeddings(input_ids=torch.gather(ids, 1, index), position_ids=index)  # (b, k, d)
        for i, layer in enumerate(self.encoder.encoder.layer):
            hidden = self._layer(i, layer, hidden, index, valid)
        self.states = _put_rows(self.states, index, valid, hidden)
        self.ids = ids
        return self.states

    def _layer(self, i: int, layer: nn.Module, hidden: torch.Tensor, index: torch.Tensor,
               valid: torch.Tensor) -> torch.Tensor:
        """One ``BertLayer`` for the changed tokens (b, k, d), over all l keys/values (cached ones updated)."""
        attention = layer.attention.self
        self.keys[i] = _put_rows(self.keys[i], index, valid, attention.key(hidden))
        self.values[i] = _put_rows(self.values[i], index, valid, attention.value(hidden))
        heads = attention.num_attention_heads
        out = F.scaled_dot_product_attention(_heads(attention.query(hidden), heads), _heads(self.keys[i], heads),
                                             _heads(self.values[i], heads), scale=attention.scaling)  # (b, h, k, e)
        out = layer.attention.output(out.transpose(1, 2).flatten(2), hidden)  # dense, LayerNorm(+ residual)
        return layer.output(layer.intermediate(out), out)


# ---------------------------------------------------------------------------------------------- the text loop
@dataclass(frozen=True)
class CacheIntervals:
    """How often each part runs in full; 1 = every call, i.e. the pipeline's exact forward."""

    image: int = 1  # full transformer every ``image`` calls; the text stream alone over cached image K/V between
    encoder: int = 1  # whole text encoder every ``encoder`` calls; only the changed tokens between

    def __post_init__(self):
        if self.image < 1 or self.encoder < 1:
            raise ValueError(f"Cache intervals must be >= 1, got {self}.")

    @property
    def exact(self) -> bool:
        return self.image == 1 and self.encoder == 1


class TextStepCache:
    """``logits(x)`` in place of ``pipe.transformer(latents, pipe.encode_tokens(x), 0).logits`` in a text loop.

    One instance per sampling run (per batch of images); call ``logits`` once per forward pass: call 0 and every
    interval-th call refresh. The fixed ``latents`` (b, c, h, w), or None for the null image, are given once.
    """

    def __init__(self, pipe, latents: torch.Tensor | None, intervals: CacheIntervals = CacheIntervals()):
        self.pipe, self.latents, self.intervals = pipe, latents, intervals
        self.image = ImageStreamCache(pipe.transformer) if intervals.image > 1 else None
        self.encoder = EncoderCache(pipe.text_encoder) if intervals.encoder > 1 else None
        self.calls = 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Text-encoder states (b, l, j) for tokens ``x``, as ``pipe.encode_tokens`` gives them (or cached)."""
        pipe, call = self.pipe, self.calls
        if self.encoder is None:
            return pipe.encode_tokens(x)
        x = x.to(pipe._execution_device)
        fresh = call % self.intervals.encoder == 0
        states = self.encoder.refresh(x) if fresh else self.encoder.update(x)
        return states.to(pipe.transformer.dtype)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (b, l, v) for the tokens ``x`` (b, l) at the next forward pass of the loop."""
        pipe, call = self.pipe, self.calls
        states = self.encode(x)
        self.calls += 1
        if self.image is None:
            zero = torch.zeros(x.shape[0], device=states.device)
            return pipe.transformer(self.latents, states, zero, mask_token_id=pipe.mask_token_id).logits
        if call % self.intervals.image == 0:
            return self.image.refresh(self.latents, states, pipe.mask_token_id)
        return self.image.text_only(states, pipe.mask_token_id)
