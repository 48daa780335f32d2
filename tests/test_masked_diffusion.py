import math

import torch

from ddit.masked_diffusion import (
    LogLinearNoise, antithetic_timesteps, gumbel_argmax, nelbo_loss, q_xt, subs_log_probs,
)

MASK = 0


def test_schedule_identities():
    noise = LogLinearNoise(1e-3)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(noise.move_chance(t), (1 - 1e-3) * t)
    assert torch.allclose(noise.loss_weight(t), 1 / t)
    h = 1e-6  # sigma' is the derivative of sigma
    assert torch.allclose(noise.rate_noise(t), (noise.total_noise(t + h) - noise.total_noise(t - h)) / (2 * h), atol=1e-5)


def test_antithetic_covers_range_evenly():
    t = antithetic_timesteps(16, eps=1e-3, generator=torch.Generator().manual_seed(3))
    s = t.sort().values
    assert s.min() >= 1e-3 and s.max() <= 1.0
    gaps = s.diff()
    assert torch.allclose(gaps, torch.full_like(gaps, (1 - 1e-3) / 16), atol=1e-6)


def test_only_response_tokens_are_masked():
    x0 = torch.arange(1, 41).reshape(2, 20)
    response = torch.zeros(2, 20, dtype=torch.bool)
    response[:, 12:] = True
    for seed in range(5):
        x_t = q_xt(x0, torch.tensor([1.0, 1.0]), response, MASK, torch.Generator().manual_seed(seed))
        assert torch.equal(x_t[:, :12], x0[:, :12])
        assert (x_t[:, 12:] == MASK).all()
    x_t = q_xt(x0.repeat(200, 1), torch.full((400,), 0.3), response.repeat(200, 1), MASK, torch.Generator().manual_seed(0))
    assert abs((x_t[:, 12:] == MASK).float().mean().item() - 0.3) < 0.02


def test_subs_parameterisation():
    logits = torch.randn(1, 3, 5)
    x_t = torch.tensor([[MASK, 2, MASK]])
    lp = subs_log_probs(logits, x_t, MASK)
    assert torch.isneginf(lp[0, :, MASK]).all()
    assert lp[0, 1, 2] == 0 and torch.isneginf(lp[0, 1, [1, 3, 4]]).all()
    assert torch.allclose(lp[0, 0].exp().sum(), torch.tensor(1.0))


def test_nelbo_matches_hand_computation():
    logits = torch.tensor([[[0.0, 1.0, 2.0, 0.5], [0.0, 0.3, 0.1, 2.0], [0.0, 1.0, 1.0, 1.0], [0, 0, 0, 0.0]]])
    x0 = torch.tensor([[2, 3, 1, 1]])
    x_t = torch.tensor([[MASK, 3, MASK, 1]])
    response = torch.tensor([[False, True, True, True]])  # position 0 is prompt: excluded though masked
    t = torch.tensor([0.4])
    noise = LogLinearNoise(1e-3)
    loss = nelbo_loss(subs_log_probs(logits, x_t, MASK), x0, x_t, t, response, MASK, noise)
    # by hand: only position 2 is a masked response token; p(x0=1) = e^1 / (e^1 + e^1 + e^1) over ids 1..3
    sigma = -math.log(1 - (1 - 1e-3) * 0.4)
    weight = ((1 - 1e-3) / (1 - (1 - 1e-3) * 0.4)) / math.expm1(sigma)
    expected = weight * -math.log(1 / 3) / 3  # averaged over the 3 response tokens
    assert abs(loss.item() - expected) < 1e-6


def test_gumbel_sampling_follows_probabilities():
    probs = torch.tensor([0.1, 0.6, 0.3])
    lp = probs.log().expand(1, 20000, 3)
    draws = gumbel_argmax(lp, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws.flatten(), minlength=3).float() / draws.numel()
    assert torch.allclose(freq, probs, atol=0.015)
