"""Revisable text (``sampler="remask"``): committed tokens go back to the mask, least confident first, only where
revisable, never at the last step; the masks left follow the schedule; each state records the confidence each token
was committed with."""

import math

import torch
from helpers import generator as gen

from ddit.text_scheduler import MaskedDiffusionScheduler

MASK = 99


def scheduled_step(sampler: str, step: int, steps: int = 4):
    """One step over a row of 8 positions: 4 committed (confidences 0.9, 0.2, 0.6, 0.1), 4 masked."""
    scheduler = MaskedDiffusionScheduler(sampler=sampler, remask_ratio=0.5)
    scheduler.set_timesteps(steps)
    x = torch.tensor([[1, 2, 3, 4, MASK, MASK, MASK, MASK]])
    log_probs = torch.log_softmax(torch.randn(1, 8, 100, generator=gen(0)), -1)
    confidence = torch.tensor([[0.9, 0.2, 0.6, 0.1] + [math.nan] * 4])
    revisable = torch.tensor([[True, True, True, False] + [True] * 4])  # position 3: a given word
    return scheduler.step(log_probs, step, x, MASK, confidence=confidence, revisable=revisable)


def test_the_least_confident_revisable_tokens_go_back_and_the_schedule_holds():
    out = scheduled_step("remask", 1)  # t = 0.75 -> s = 0.5: 4 masks leave floor(4 * 0.5 / 0.75) = 2
    assert out.remasked[0].tolist() == [False, True, False, False, False, False, False, False]  # 0.2; 0.1 is given
    assert (out.prev_sample == MASK).sum() == 2  # the schedule's count, remasked one included
    assert out.revealed.sum() == 3  # k = 2 and one more for the one sent back
    assert out.prev_sample[0, 3] == 4 and out.prev_sample[0, 0] == 1


def test_the_last_step_revises_nothing_and_the_confidence_sampler_never_does():
    last = scheduled_step("remask", 3)
    assert not last.remasked.any() and not (last.prev_sample == MASK).any()
    assert not scheduled_step("confidence", 1).remasked.any()


def test_a_run_revises_and_ends_unmasked_with_confidences(pipe, image):
    states = list(pipe.iter_caption(image, sampler="remask", num_inference_steps=4, max_length=6,
                                    generator=gen(1)))
    assert any(s.remasked.any() for s in states)  # it revised something
    last = states[-1]
    assert not last.masked.any()
    sampled = last.response_mask[0]
    p = last.confidence[0][sampled]
    assert ((p > 0) & (p <= 1)).all()  # each committed token has the probability it was committed with
    assert torch.isnan(last.confidence[0][~sampled]).all()  # the prompt was never sampled


def test_remasking_never_touches_a_given_word(pipe, image):
    template = "a _ _ _ red _ _ _ _ left"
    given = {i: w for i, w in enumerate(template.split()) if w != "_"}
    states = list(pipe.iter_infill(image, template, sampler="remask", num_inference_steps=6, generator=gen(2)))
    ids = {i: pipe.tokenizer.convert_tokens_to_ids(w) for i, w in given.items()}
    for state in states:
        row = state.token_ids[0][state.response_mask[0]].tolist()
        assert all(row[i] == tid for i, tid in ids.items())
    assert any(s.remasked.any() for s in states)


def test_the_ancestral_sampler_keeps_its_outputs(pipe, image):
    """Recording confidences changes no sampler's tokens (the paper's sampler at a fixed seed, twice)."""
    a = pipe.caption(image, sampler="ancestral", generator=gen(3)).token_ids
    b = pipe.caption(image, sampler="ancestral", generator=gen(3)).token_ids
    assert torch.equal(a, b)
