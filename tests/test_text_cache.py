"""Reuse across text steps (``benchmarks/text_cache_impl.py``, measured and not kept): a fresh cache computes the
full forward, a stale one does not."""

import pytest
import torch
from helpers import generator as gen

from benchmarks.text_cache_impl import CacheIntervals, EncoderCache, ImageStreamCache, TextStepCache
from ddit.text_layout import layout


def _inputs(pipe, image, rows: int = 3):
    """Latents of ``image`` for ``rows`` rows and a caption layout (slot fully masked)."""
    latents = pipe.encode_image([image]).expand(rows, -1, -1, -1)
    ids = layout(pipe.tokenizer, ["a small"] * rows, 6, max_prompt_length=16).input_ids
    return latents, ids


def _reveal(pipe, ids: torch.Tensor, seed: int) -> torch.Tensor:
    """``ids`` with about half the masked positions replaced by random ordinary tokens."""
    g = gen(seed)
    masked = ids == pipe.mask_token_id
    pick = masked & (torch.rand(ids.shape, generator=g) < 0.5)
    pick[:, -1] |= masked[:, -1]  # at least one change per row
    tokens = torch.randint(3, len(pipe.tokenizer), ids.shape, generator=g)
    return torch.where(pick, tokens, ids)


def _full_logits(pipe, latents, ids):
    zero = torch.zeros(ids.shape[0])
    return pipe.transformer(latents, pipe.encode_tokens(ids), zero, mask_token_id=pipe.mask_token_id).logits


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    assert torch.equal(torch.isinf(a), torch.isinf(b))  # the mask logit is -inf in both
    finite = torch.isfinite(a)
    return torch.allclose(a[finite], b[finite], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("with_image", [True, False])
@torch.no_grad()
def test_fresh_image_cache_text_path_equals_full_forward(pipe, image, with_image):
    latents, ids = _inputs(pipe, image)
    latents = latents if with_image else None  # None: the null image embedding
    states = pipe.encode_tokens(ids)
    cache = ImageStreamCache(pipe.transformer)
    full = cache.refresh(latents, states, pipe.mask_token_id)
    assert torch.equal(full, _full_logits(pipe, latents, ids))
    assert _close(cache.text_only(states, pipe.mask_token_id), full)


@torch.no_grad()
def test_stale_image_cache_differs_from_full_forward(pipe, image):
    latents, ids = _inputs(pipe, image)
    cache = ImageStreamCache(pipe.transformer)
    cache.refresh(latents, pipe.encode_tokens(ids), pipe.mask_token_id)
    later = _reveal(pipe, ids, seed=1)
    stale = cache.text_only(pipe.encode_tokens(later), pipe.mask_token_id)
    assert not _close(stale, _full_logits(pipe, latents, later))


@torch.no_grad()
def test_image_cache_refuses_an_empty_cache_or_another_batch(pipe, image):
    latents, ids = _inputs(pipe, image)
    cache = ImageStreamCache(pipe.transformer)
    with pytest.raises(RuntimeError):
        cache.text_only(pipe.encode_tokens(ids))
    cache.refresh(latents, pipe.encode_tokens(ids))
    with pytest.raises(RuntimeError):
        cache.text_only(pipe.encode_tokens(ids[:1]))


@torch.no_grad()
def test_encoder_cache_recomputing_every_token_equals_the_encoder(pipe, image):
    _, ids = _inputs(pipe, image)
    cache = EncoderCache(pipe.text_encoder)
    assert torch.equal(cache.refresh(ids), pipe.encode_tokens(ids))
    others = torch.randint(3, len(pipe.tokenizer), ids.shape, generator=gen(2))
    others = torch.where(others == ids, 3 + (others - 2) % (len(pipe.tokenizer) - 3), others)  # every token differs
    assert (others != ids).all()
    torch.testing.assert_close(cache.update(others), pipe.encode_tokens(others), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_encoder_cache_keeps_unchanged_states_and_so_differs(pipe, image):
    _, ids = _inputs(pipe, image)
    cache = EncoderCache(pipe.text_encoder)
    before = cache.refresh(ids).clone()
    later = _reveal(pipe, ids, seed=3)
    updated = cache.update(later)
    unchanged = later == ids
    assert torch.equal(updated[unchanged], before[unchanged])
    assert not torch.allclose(updated, pipe.encode_tokens(later), atol=1e-4)  # the exact states moved
    assert torch.equal(cache.update(later), updated)  # nothing changed: nothing recomputed


@torch.no_grad()
def test_text_step_cache_refreshes_on_schedule(pipe, image):
    latents, ids = _inputs(pipe, image)
    later = _reveal(pipe, ids, seed=4)
    exact = TextStepCache(pipe, latents)
    assert torch.equal(exact.logits(ids), _full_logits(pipe, latents, ids))
    assert torch.equal(exact.logits(later), _full_logits(pipe, latents, later))
    cached = TextStepCache(pipe, latents, CacheIntervals(image=2, encoder=2))
    assert torch.equal(cached.logits(ids), _full_logits(pipe, latents, ids))  # call 0 refreshes both
    assert not _close(cached.logits(later), _full_logits(pipe, latents, later))  # call 1 reuses both
    assert torch.equal(cached.logits(later), _full_logits(pipe, latents, later))  # call 2 refreshes again


def test_intervals_are_checked():
    with pytest.raises(ValueError):
        CacheIntervals(image=0)
    assert CacheIntervals().exact and not CacheIntervals(encoder=4).exact
