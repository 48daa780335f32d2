"""Text-to-image: flow-matching steps from noise to latents (``ddit.image_sampling``), with classifier-free
guidance against the negative prompts. Glossary: b - batch, c - latent channels, h, w - latent size."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterator

from ..checks import as_integer, check_guidance, check_guidance_interval, check_steps, check_text_length
from .base import Model, TaskOptions
from .text import as_list


@dataclass
class GenerateOptions(TaskOptions):
    """Image options. ``guidance_interval`` ([low, high] in sigma, 1 = noise): guide only there, elsewhere one
    conditional pass (None: every step). ``height``/``width`` default to the model's resolution; prompts longer than
    ``max_sequence_length`` tokens are refused, not cut. The solver and its shift are the pipeline's scheduler's."""

    num_inference_steps: int = 28  # SD3's default
    guidance_scale: float = 7.0
    guidance_interval: tuple[float, float] | None = None
    height: int | None = None
    width: int | None = None
    max_sequence_length: int = 256

    def checked(self):
        interval = check_guidance_interval(self.guidance_interval)
        sides = {name: None if getattr(self, name) is None else as_integer(getattr(self, name), name)
                 for name in ("height", "width")}
        return dataclasses.replace(self, num_inference_steps=check_steps(self.num_inference_steps),
                                   guidance_scale=check_guidance(self.guidance_scale), guidance_interval=interval,
                                   max_sequence_length=as_integer(self.max_sequence_length, "max_sequence_length"),
                                   **sides)


def check_prompts(model: Model, prompt, negative_prompt, options: GenerateOptions) -> tuple[list[str], list[str]]:
    """The prompts and one negative prompt per prompt, or ``ValueError`` saying what is wrong with them."""
    prompts = as_list(prompt, "prompt")
    if not all(isinstance(p, str) for p in prompts):
        raise ValueError("`prompt` must be a string or a list of strings.")
    if not all(p.strip() for p in prompts):
        raise ValueError("`prompt` is empty; describe the image you want.")
    negatives = as_list(negative_prompt if negative_prompt is not None else "", "negative_prompt")
    if len(negatives) not in (1, len(prompts)) or not all(isinstance(n, str) for n in negatives):
        raise ValueError("`negative_prompt` must be one string or one string per prompt.")
    for what, texts in (("prompt", prompts), ("negative prompt", negatives)):
        lengths = [len(model.tokenizer(t)["input_ids"]) for t in texts]
        check_text_length(lengths, texts, options.max_sequence_length, what, "max_sequence_length")
    return prompts, negatives * len(prompts) if len(negatives) == 1 else negatives


def check_size(model: Model, height: int, width: int) -> None:
    """Refuse an image size the transformer cannot take (a multiple of its patch, within its position table)."""
    config = model.transformer.config
    multiple = model.vae_scale_factor * config.patch_size
    for name, side in (("height", height), ("width", width)):
        if side < multiple or side % multiple:
            raise ValueError(f"`{name}` must be a positive multiple of {multiple}, got {side}.")
    max_side = config.pos_embed_max_size * model.vae_scale_factor
    if max(height, width) > max_side:
        raise ValueError(f"`height`/`width` can be at most {max_side} for this model.")


def check_callback_inputs(callback_inputs) -> None:
    """Refuse a step callback's tensor names other than ``latents`` and ``pred_clean``."""
    unknown = set(callback_inputs) - {"latents", "pred_clean"}
    if unknown:
        raise ValueError(f"callback_on_step_end_tensor_inputs may name latents and pred_clean, not {unknown}.")


def prompt_context(model: Model, prompts: list[str], negatives: list[str], options: GenerateOptions):
    """The encoder states an image loop reads: the negative prompts' before the prompts' when guided (2b rows)."""
    guided = options.guidance_scale != 1.0
    return model.encode_prompt(negatives + prompts if guided else prompts, options.max_sequence_length)


def generate_steps(model: Model, prompt, negative_prompt, options: GenerateOptions, generator=None, latents=None,
                   callback: Callable | None = None, callback_inputs: tuple[str, ...] = ("latents",)) -> Iterator:
    """Validate now; return the ``ImageStep`` iterator, one state per transformer call of ``model.scheduler`` (one per
    step for Euler, DPM-Solver++ and UniPC; Heun calls twice). ``callback(i, t, tensors)`` may return
    ``{"latents": new}``; ``callback_inputs`` names the tensors it gets (``latents``, ``pred_clean``)."""
    import torch  # imported when a task runs, not with its options
    from diffusers.utils.torch_utils import randn_tensor

    from ..image_sampling import image_steps

    prompts, negatives = check_prompts(model, prompt, negative_prompt, options)
    height, width = options.height or model.resolution, options.width or model.resolution
    check_size(model, height, width)
    check_callback_inputs(callback_inputs)
    context = prompt_context(model, prompts, negatives, options)
    shape = (len(prompts), model.transformer.config.in_channels, height // model.vae_scale_factor,
             width // model.vae_scale_factor)
    if latents is None:
        latents = randn_tensor(shape, generator=generator, device=model.device, dtype=torch.float32)
    return image_steps(model, context, latents, options.num_inference_steps, options.guidance_scale,
                       options.guidance_interval, callback, tuple(callback_inputs))
