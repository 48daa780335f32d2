import pytest
import torch
from helpers import generator as gen

from ddit.text_scheduler import MaskedDiffusionScheduler



@pytest.mark.parametrize("sampler", ["ancestral", "confidence"])
def test_prompt_fixed_and_no_mask_left(pipe, image, sampler):
    states = list(pipe.iter_answer([image, image], ["what color is the circle?", "how many?"],
                                   num_inference_steps=5, max_length=4, sampler=sampler, generator=gen(1)))
    assert len(states) == 5
    first = states[0]
    prompt = ~first.response_mask
    assert prompt.any()
    for state in states:
        assert torch.equal(state.token_ids[prompt], first.token_ids[prompt])
        assert not state.masked[prompt].any()
        assert not (state.revealed & prompt).any()
    assert not states[-1].masked.any()
    # every response position was revealed exactly once
    revealed = torch.stack([s.revealed for s in states]).sum(0)
    assert torch.equal(revealed, first.response_mask.long())


def test_ancestral_cache_equals_no_cache(pipe, image, monkeypatch):
    prompt = pipe.defaults.caption.prompt
    run = lambda reuse: list(pipe.iter_text(image, prompt, num_inference_steps=40, max_length=6, sampler="ancestral",
                                            generator=gen(7), reuse_predictions=reuse))
    cached = run(True)
    assert any(s.reused_prediction for s in cached), "with 40 steps for 6 tokens some steps reveal nothing"
    calls = []
    original = pipe.transformer.forward
    monkeypatch.setattr(pipe.transformer, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    uncached = run(False)
    monkeypatch.undo()
    assert len(calls) == 40
    assert not any(s.reused_prediction for s in uncached)
    assert torch.equal(cached[-1].token_ids, uncached[-1].token_ids)
    forwards_with_cache = sum(not s.reused_prediction for s in cached)
    assert forwards_with_cache < 40


def test_confidence_reveals_most_confident_first():
    sched = MaskedDiffusionScheduler(sampler="confidence")
    sched.set_timesteps(2)
    x = torch.tensor([[5, 0, 0, 0, 0]])  # 0 is the mask
    probs = torch.full((1, 5, 6), 1e-3)
    probs[0, 1, 2], probs[0, 2, 3], probs[0, 3, 4], probs[0, 4, 1] = 0.9, 0.5, 0.95, 0.4
    probs[..., 0] = 0
    out = sched.step(probs.log(), 0, x, 0)
    assert out.revealed.tolist() == [[False, True, False, True, False]]  # 4 masked, t 1 -> 0.5: reveal 2
    assert out.prev_sample.tolist() == [[5, 2, 0, 4, 0]]
    final = sched.step(probs.log(), 1, out.prev_sample, 0).prev_sample
    assert final.tolist() == [[5, 2, 3, 4, 1]]


def test_confidence_threshold_reveals_more():
    sched = MaskedDiffusionScheduler(sampler="confidence", confidence_threshold=0.8)
    sched.set_timesteps(4)
    x = torch.zeros(1, 4, dtype=torch.long)
    probs = torch.full((1, 4, 3), 0.05)
    probs[0, :, 1] = torch.tensor([0.9, 0.85, 0.82, 0.2])
    out = sched.step(probs.log(), 0, x, 0)
    assert out.revealed.tolist() == [[True, True, True, False]]


def test_bad_scheduler_arguments():
    with pytest.raises(ValueError, match="sampler"):
        MaskedDiffusionScheduler(sampler="greedy")
    with pytest.raises(ValueError, match="threshold"):
        MaskedDiffusionScheduler(sampler="confidence", confidence_threshold=1.5)
    with pytest.raises(ValueError, match=">= 1"):
        MaskedDiffusionScheduler().set_timesteps(0)
