"""Scoring: which text fits this image, which image fits this text (docs/design.md §2.2, §2.1).

One network holds both conditionals, and both are diffusions whose likelihood bounds training computes:

- ``score_texts``: the masked-diffusion ELBO of log p(text | image), *summed* over the text's tokens (the end
  tokens that pad a slot included, so every candidate is scored in a slot of the same length), estimated with
  ``num_samples`` antithetic timesteps. Every candidate sees the same timesteps and the same masking draws, so
  the differences between candidates are far less noisy than the scores themselves.
- ``score_images``: minus the flow-matching loss of each image given the prompt, averaged over ``num_samples``
  stratified timesteps with the same timesteps and the same noise for every candidate (common random numbers:
  what ranks candidates is their difference, not the absolute values).

Higher is better for both; use them for zero-shot choice (retrieval, multiple choice, yes/no).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..checks import as_integer
from .base import Model, TaskOptions
from .generate import GenerateOptions, check_prompts
from .text import as_list, load_images

MAX_SAMPLES = 1024


@dataclass
class ScoreOptions(TaskOptions):
    """``num_samples``: timesteps per candidate (each one transformer pass per candidate); ``prompt``: the text
    tasks' instruction before the scored text ("" as the caption task uses)."""

    # the true one among 4 (3 with one attribute changed), bundled model, 200 held-out scenes, 2026-12-03
    # (held-out seed 12345): top-1 texts / images 96.5 / 98.0 % at 4, 100 / 100 at 8; on the benchmark's items
    # (``python -m shapes_world.benchmark --tasks score``, the model card) 96.5 / 100 at 4, 100 / 99.0 at 8
    num_samples: int = 8
    prompt: str = ""

    def checked(self):
        samples = as_integer(self.num_samples, "num_samples")
        if not 1 <= samples <= MAX_SAMPLES:
            raise ValueError(f"`num_samples` must be between 1 and {MAX_SAMPLES}, got {samples}.")
        if not isinstance(self.prompt, str):
            raise ValueError(f"`prompt` must be a string, got {self.prompt!r}.")
        return dataclasses.replace(self, num_samples=samples)


def score_texts(model: Model, image, texts, options: ScoreOptions, generator=None) -> tuple[list[float], int]:
    """(log p(text | image) lower bound for each text, transformer passes per candidate)."""
    import torch  # imported when a task runs, not with its options

    from ..masked_diffusion import LogLinearNoise, antithetic_timesteps, subs_log_probs, uniform, weighted_nll
    from ..text_layout import layout, response_ids

    texts = as_list(texts, "texts")
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError("`texts` must be non-empty strings.")
    images = load_images(image)
    if len(images) != 1:
        raise ValueError("`score_texts` scores texts against one image; give one image.")
    slot = max(len(response_ids(model.tokenizer, t)) for t in texts)
    batch = layout(model.tokenizer, [options.prompt] * len(texts), slot, responses=texts)
    x0, response = batch.input_ids.to(model.device), batch.response_mask.to(model.device)
    latents = model.encode_image(images).expand(len(texts), -1, -1, -1)
    noise, zero, total = LogLinearNoise(), torch.zeros(len(texts), device=model.device), 0.0
    with torch.no_grad():
        for t in antithetic_timesteps(options.num_samples, noise.eps, generator, model.device):
            # the forward masking (``q_xt``) with one draw for all rows: the same masks for every candidate
            draw = uniform((1, x0.shape[1]), generator, model.device)
            x_t = torch.where((draw < noise.move_chance(t)) & response, model.mask_token_id, x0)
            logits = model.transformer(latents, model.encode_tokens(x_t), zero,
                                       mask_token_id=model.mask_token_id).logits
            log_probs = subs_log_probs(logits, x_t, model.mask_token_id)
            terms = weighted_nll(log_probs, x0, x_t, t.expand(len(texts)), response, model.mask_token_id, noise)
            total = total + terms.sum(-1)
    return (-total / options.num_samples).tolist(), options.num_samples


def score_images(model: Model, prompt: str, images, options: ScoreOptions, generator=None,
                 prompt_options: GenerateOptions | None = None) -> tuple[list[float], int]:
    """(minus the flow-matching loss of each image given ``prompt``, transformer passes per candidate); the
    prompt is checked and read as text-to-image reads it (``prompt_options``: the model's generate options)."""
    import torch  # imported when a task runs, not with its options
    from diffusers.utils.torch_utils import randn_tensor

    from ..flow_matching import flow_matching_errors, interpolate
    from ..masked_diffusion import uniform

    prompt_options = prompt_options or GenerateOptions()
    prompts, _ = check_prompts(model, prompt, None, prompt_options)
    x0 = model.encode_image(load_images(as_list(images, "images"))).float()  # (n, c, h, w)
    n, k = x0.shape[0], options.num_samples
    context = model.encode_prompt(prompts, prompt_options.max_sequence_length).expand(n, -1, -1)
    # stratified timesteps in (0, 1) and one noise draw each, shared by every candidate
    ts = (uniform((1,), generator, model.device) + torch.arange(k, device=model.device)) / k
    total = torch.zeros(n, device=model.device)
    with torch.no_grad():
        for t in ts:
            eps = randn_tensor((1, *x0.shape[1:]), generator=generator, device=model.device).expand(n, -1, -1, -1)
            x_t = interpolate(x0, eps, t.expand(n))
            v = model.transformer(x_t.to(model.transformer.dtype), context, (t * 1000).expand(n),
                                  return_logits=False).sample
            total += flow_matching_errors(v, x0, eps)
    return (-total / k).tolist(), k
