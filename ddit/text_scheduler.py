"""The masked-diffusion scheduler: timesteps, forward masking and the two text samplers.

Shaped like a diffusers scheduler (``set_timesteps``, ``add_noise``, ``step``); the equations it
uses are in ``masked_diffusion.py``. Glossary: b - batch, l - text tokens, v - vocabulary.

Samplers (one interface, chosen by ``sampler``):
- ``"ancestral"``: the paper's sampler. From t to s < t every masked position is revealed with
  probability (t - s) / t, its token drawn from p(x0 | x_t); at s = 0 all are revealed.
- ``"confidence"``: reveal the positions whose most likely token is most probable; as many per
  step as the ancestral sampler reveals on average, plus every position whose confidence exceeds
  ``confidence_threshold`` when set.
- ``"remask"``: revisable text (ReMDM-conf, design §2.11). As ``"confidence"``, and each step but the last also
  sends back to the mask the ``remask_ratio`` share of the committed tokens it may revise that were least
  confident when committed, revealing as many more so that the masks left still follow the schedule. The model's
  outputs at unmasked positions are untrained (SUBS copies the input), so a token is revised only by masking it
  and predicting it again at the next step.
Only ``"remask"`` changes a position that is not masked, and only one the caller marks revisable (a sampled
token, never a prompt token or a given word).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput

from .masked_diffusion import LogLinearNoise, gumbel_argmax, q_xt, uniform
from .task_defaults import SAMPLERS

REMASK_RATIO = 0.25  # share of the revisable committed tokens "remask" sends back per step (measured: docs §2.11)


@dataclass
class MaskedDiffusionStepOutput(BaseOutput):
    """``prev_sample``: tokens at the next (less noisy) time (b, l); ``revealed``: positions unmasked now (b, l);
    ``remasked``: committed positions sent back to the mask now (b, l; none but with ``"remask"``)."""

    prev_sample: torch.LongTensor
    revealed: torch.BoolTensor
    remasked: torch.BoolTensor | None = None


class MaskedDiffusionScheduler(SchedulerMixin, ConfigMixin):
    """Absorbing-state text diffusion with the log-linear schedule (MDLM)."""

    config_name = "scheduler_config.json"

    @register_to_config
    def __init__(self, eps: float = 1e-3, sampler: str = "ancestral", confidence_threshold: float | None = None,
                 remask_ratio: float = REMASK_RATIO):
        if sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r}; choose one of {SAMPLERS}.")
        if not 0.0 <= remask_ratio <= 1.0:
            raise ValueError(f"remask_ratio must be in [0, 1], got {remask_ratio}.")
        if confidence_threshold is not None and not 0.0 < confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold must be in (0, 1], got {confidence_threshold}.")
        self.noise = LogLinearNoise(eps)
        self.timesteps = torch.linspace(1.0, 0.0, 2)

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str = "cpu") -> None:
        """Times 1 = all masked ... 0 = clean, ``num_inference_steps + 1`` points; step i goes timesteps[i] -> [i+1]."""
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}.")
        self.timesteps = torch.linspace(1.0, 0.0, num_inference_steps + 1, device=device, dtype=torch.float64)

    def add_noise(
        self, x0: torch.Tensor, t: torch.Tensor, maskable: torch.Tensor, mask_token_id: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Training-time forward process: mask each maskable token with probability (1 - eps) t."""
        return q_xt(x0, self.noise.move_chance(t), maskable, mask_token_id, generator)

    def step(
        self, log_probs: torch.Tensor, step_index: int, x_t: torch.Tensor, mask_token_id: int,
        generator: torch.Generator | None = None, return_dict: bool = True, confidence: torch.Tensor | None = None,
        revisable: torch.Tensor | None = None,
    ) -> MaskedDiffusionStepOutput | tuple:
        """One reverse step from ``timesteps[step_index]`` to ``timesteps[step_index + 1]``.

        Args:
            log_probs: SUBS log p(x0 | x_t), shape (b, l, v).
            x_t: current tokens (b, l) containing ``mask_token_id`` at masked positions.
            confidence, revisable (``"remask"`` only): the probability each committed token had when it was
                committed, and which positions may be revised (b, l); without them nothing is revised.
        """
        t = float(self.timesteps[step_index])
        s = float(self.timesteps[step_index + 1])
        masked = x_t == mask_token_id
        remask = torch.zeros_like(masked)
        if self.config.sampler == "ancestral":
            reveal = self._ancestral_reveal(masked, t, s, generator, x_t.device)
            candidates = gumbel_argmax(log_probs, generator)
        else:
            candidates = log_probs.argmax(-1)
            likely = torch.gather(log_probs, -1, candidates.unsqueeze(-1)).squeeze(-1).exp()
            extra = 0
            if self.config.sampler == "remask" and confidence is not None and revisable is not None:
                remask, extra = self._remask(masked, confidence, revisable & ~masked, t, s)
            reveal = self._confident_reveal(masked, likely, t, s, extra)
        reveal = reveal & masked
        prev = torch.where(reveal, candidates, x_t)
        prev = torch.where(remask, torch.full_like(prev, mask_token_id), prev)
        if not return_dict:
            return (prev, reveal, remask)
        return MaskedDiffusionStepOutput(prev_sample=prev, revealed=reveal, remasked=remask)

    def _remask(self, masked: torch.Tensor, confidence: torch.Tensor, committed: torch.Tensor, t: float,
                s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The least confident ``remask_ratio`` share of the ``committed`` revisable tokens per row, no more than the
        masks the schedule leaves after this step (none at the last); and how many that is per row (b, 1)."""
        left = torch.floor(masked.sum(-1, keepdim=True) * s / t).long()  # masks after the step
        r = torch.minimum(torch.floor(committed.sum(-1, keepdim=True) * self.config.remask_ratio).long(), left)
        score = torch.where(committed, confidence, torch.full_like(confidence, float("inf")))
        rank = score.argsort(dim=-1, stable=True).argsort(dim=-1)  # 0 = least confident
        return committed & (rank < r), r

    @staticmethod
    def _ancestral_reveal(masked: torch.Tensor, t: float, s: float, generator, device) -> torch.Tensor:
        """Each masked position is revealed with probability (t - s) / t (all of them at s = 0)."""
        draw = uniform(tuple(masked.shape), generator, device)
        return draw < (t - s) / t if s > 0 else torch.ones_like(masked)

    def _confident_reveal(self, masked: torch.Tensor, confidence: torch.Tensor, t: float, s: float,
                          extra: torch.Tensor | int = 0) -> torch.Tensor:
        """Reveal the k most confident masked positions per row, k = m - floor(m s / t) (at least one), plus
        ``extra`` (as many as are remasked)."""
        m = masked.sum(-1, keepdim=True)  # (b, 1)
        k = m - torch.floor(m * s / t).long() + extra
        k = torch.where(m > 0, k.clamp(min=1), k)
        score = torch.where(masked, confidence, torch.full_like(confidence, -1.0))
        rank = score.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)  # 0 = most confident
        reveal = rank < k
        if self.config.confidence_threshold is not None:
            reveal |= confidence >= self.config.confidence_threshold
        return reveal
