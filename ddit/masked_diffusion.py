"""Masked (absorbing-state) discrete diffusion for text: MDLM with the log-linear schedule (paper §2.2, eq. 5–7;
docs/design.md §2.2).

Glossary: b - batch, l - text tokens, v - vocabulary.
Every equation is one small function; the samplers that use them live in ``text_scheduler.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def uniform(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str, dtype=torch.float32
) -> torch.Tensor:
    """U(0, 1) draws made on the generator's own device (a CPU generator can drive a CUDA run)."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source, dtype=dtype).to(device)


@dataclass(frozen=True)
class LogLinearNoise:
    """sigma(t) = -log(1 - (1 - eps) t): a token is masked with probability 1 - exp(-sigma) = (1 - eps) t."""

    eps: float = 1e-3  # keeps sigma finite at t = 1

    def total_noise(self, t: torch.Tensor) -> torch.Tensor:
        """sigma(t)."""
        return -torch.log1p(-(1 - self.eps) * t)

    def rate_noise(self, t: torch.Tensor) -> torch.Tensor:
        """sigma'(t) = (1 - eps) / (1 - (1 - eps) t)."""
        return (1 - self.eps) / (1 - (1 - self.eps) * t)

    def move_chance(self, t: torch.Tensor) -> torch.Tensor:
        """Probability that a token is masked at time t: 1 - exp(-sigma(t)) = (1 - eps) t."""
        return -torch.expm1(-self.total_noise(t))

    def loss_weight(self, t: torch.Tensor) -> torch.Tensor:
        """NELBO weight sigma'(t) / (exp(sigma(t)) - 1); equals 1/t for this schedule."""
        return self.rate_noise(t) / torch.expm1(self.total_noise(t))


def antithetic_timesteps(
    batch_size: int, eps: float = 1e-3, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """t_i = ((u + i) / b mod 1)(1 - eps) + eps with one u ~ U(0, 1): evenly spread over [eps, 1]."""
    u = uniform((1,), generator, device)
    t = ((u + torch.arange(batch_size, device=device)) / batch_size) % 1
    return t * (1 - eps) + eps


def q_xt(
    x0: torch.Tensor, move_chance: torch.Tensor, maskable: torch.Tensor, mask_token_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Forward masking: each *maskable* token of x0 (b, l) becomes the mask with prob ``move_chance`` (b,)."""
    draw = uniform(tuple(x0.shape), generator, x0.device)
    masked = (draw < move_chance.reshape(-1, 1)) & maskable
    return torch.where(masked, torch.full_like(x0, mask_token_id), x0)


def forbid(logits: torch.Tensor, token_ids: list[int] | tuple[int, ...]) -> torch.Tensor:
    """``logits`` (b, l, v) with these tokens' set to -inf: no masked position will be predicted as one of them."""
    return logits.index_fill(-1, torch.tensor(list(token_ids), device=logits.device), float("-inf"))


def never_the_mask(logits: torch.Tensor, mask_token_id: int) -> torch.Tensor:
    """SUBS, first half: the mask token's logit set to -inf (b, l, v), so that it is never predicted."""
    return forbid(logits, [mask_token_id])


def subs_log_probs(logits: torch.Tensor, x_t: torch.Tensor, mask_token_id: int) -> torch.Tensor:
    """SUBS parameterisation: log p(x0 | x_t) of shape (b, l, v).

    The mask token gets probability 0; tokens that are not masked in x_t are copied through
    (log-probability 0 on themselves, -inf elsewhere).
    """
    log_probs = torch.log_softmax(never_the_mask(logits.float(), mask_token_id), dim=-1)
    unmasked = x_t != mask_token_id
    copy = torch.full_like(log_probs, float("-inf")).scatter_(-1, x_t.unsqueeze(-1), 0.0)
    return torch.where(unmasked.unsqueeze(-1), copy, log_probs)


def nelbo_loss(
    log_probs: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, response_mask: torch.Tensor,
    mask_token_id: int, noise: LogLinearNoise,
) -> torch.Tensor:
    """Continuous-time NELBO (MDLM eq. 10), averaged over response tokens.

    L = E_t [ sigma'(t) / (exp sigma(t) - 1) * sum_{masked l} -log p(x0^l | x_t) ] / #response tokens.
    """
    per_token = weighted_nll(log_probs, x0, x_t, t, response_mask, mask_token_id, noise)
    return per_token.sum() / response_mask.sum().clamp(min=1)


def weighted_nll(
    log_probs: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, response_mask: torch.Tensor,
    mask_token_id: int, noise: LogLinearNoise,
) -> torch.Tensor:
    """The NELBO's terms (b, l): sigma'(t) / (exp sigma(t) - 1) * -log p(x0^l | x_t) at the masked response
    positions, 0 elsewhere. Summed over a row they bound -log p(row's response | its condition) (one t)."""
    nll = -torch.gather(log_probs, -1, x0.unsqueeze(-1)).squeeze(-1)  # (b, l)
    masked = (x_t == mask_token_id) & response_mask
    return torch.where(masked, nll * noise.loss_weight(t).reshape(-1, 1), torch.zeros_like(nll))


def gumbel_argmax(log_probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample a category per position from log-probabilities with the Gumbel-max trick: (b, l, v) -> (b, l)."""
    u = uniform(tuple(log_probs.shape), generator, log_probs.device, torch.float64)
    gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
    return (log_probs.double() + gumbel).argmax(-1)
