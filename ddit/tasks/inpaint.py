"""In-painting and image-to-image: repaint the masked part of a given image to fit a prompt, keep the rest
(docs/design.md §2.10). Glossary: b - batch, c - latent channels, h, w - latent size, H, W - pixels.

The mask follows diffusers: white (> 127 in grey) = repaint, black (or transparent) = keep. It is read at the
image's size and brought to latent resolution by a max over each latent cell (dilated, never shrunk: a latent cell
any repainted pixel falls in is repainted). The kept latents follow the given image's noising path at every step
(``ddit.image_sampling.Known``); after decoding, the kept pixels are the given image's own (``paste_kept``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterator

from ..checks import check_strength, steps_run
from .base import Model
from .generate import GenerateOptions, check_callback_inputs, check_prompts, check_size, prompt_context
from .text import as_list, load_images


@dataclass
class InpaintOptions(GenerateOptions):
    """The image options (``GenerateOptions``; unset: the model's generate defaults) and ``strength``: the share
    of the steps run, from the given image noised to that level (1: from pure noise in the masked region; below 1
    the masked region starts from the given image, so a full mask with ``strength`` < 1 is a variation of it)."""

    strength: float = 1.0

    def checked(self):
        checked = dataclasses.replace(GenerateOptions.checked(self), strength=check_strength(self.strength))
        steps_run(checked.num_inference_steps, checked.strength)  # refused now, not at the first step
        return checked


@dataclass
class InpaintInputs:
    """The checked inputs of a run: fitted RGB ``images`` and grey ``masks`` (PIL, H x W, one per prompt)."""

    images: list
    masks: list
    height: int
    width: int


def prepare(model: Model, image, mask_image, rows: int, options: InpaintOptions) -> InpaintInputs:
    """Load, match up and fit the images and masks (one each, or one per row), or ``ValueError``."""
    from PIL import Image

    from ..image_inputs import resize_and_center_crop

    if image is None or mask_image is None:
        raise ValueError("In-painting needs an `image` and a `mask_image` (white = repaint).")
    from ..image_inputs import load_image

    images = load_images(image)
    masks = [load_image(m, background=(0, 0, 0)) for m in as_list(mask_image, "mask_image")]  # transparent: keep
    for name, items in (("image", images), ("mask_image", masks)):
        if len(items) not in (1, rows):
            raise ValueError(f"Got {len(items)} {name}s for {rows} prompts; give one, or one per prompt.")
    height, width = options.height or model.resolution, options.width or model.resolution
    check_size(model, height, width)
    fitted = [resize_and_center_crop(i, width, height) for i in images]
    masks = [resize_and_center_crop(m.convert("L"), width, height, resample=Image.NEAREST) for m in masks]
    return InpaintInputs(images=fitted * rows if len(fitted) == 1 else fitted,
                         masks=masks * rows if len(masks) == 1 else masks, height=height, width=width)


def latent_keep(masks: list, scale: int):
    """Grey masks (PIL, white = repaint) -> (b, 1, h, w) float, 1 where every pixel of the latent cell is kept."""
    import numpy as np
    import torch

    repaint = torch.from_numpy(np.stack([np.asarray(m) > 127 for m in masks])).float()[:, None]  # (b, 1, H, W)
    return 1.0 - torch.nn.functional.max_pool2d(repaint, scale)  # a cell with any repainted pixel is repainted


def pixel_keep(masks: list):
    """Grey masks -> (b, 1, H, W) float, 1 where the pixel is kept."""
    import numpy as np
    import torch

    return torch.from_numpy(np.stack([np.asarray(m) <= 127 for m in masks])).float()[:, None]


def inpaint_steps(model: Model, inputs: InpaintInputs, prompts: list[str], negatives: list[str],
                  options: InpaintOptions, generator=None, latents=None, callback: Callable | None = None,
                  callback_inputs: tuple[str, ...] = ("latents",)) -> Iterator:
    """Return the ``ImageStep`` iterator of an in-painting run (``prepare`` the inputs first)."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    from ..image_sampling import Known, image_steps

    check_callback_inputs(callback_inputs)
    given = model.encode_image(inputs.images, inputs.height, inputs.width).float()
    keep = latent_keep(inputs.masks, model.vae_scale_factor).to(given.device)
    if latents is None:
        latents = randn_tensor(given.shape, generator=generator, device=model.device, dtype=torch.float32)
    context = prompt_context(model, prompts, negatives, options)
    known = Known(latents=given, keep=keep, noise=latents)
    return image_steps(model, context, latents, options.num_inference_steps, options.guidance_scale,
                       options.guidance_interval, callback, tuple(callback_inputs), known=known,
                       strength=options.strength)


def check_inputs(model: Model, image, mask_image, prompt, negative_prompt, options: InpaintOptions):
    """The prompts, negative prompts and fitted inputs of a run, or ``ValueError`` naming what is wrong."""
    prompts, negatives = check_prompts(model, prompt, negative_prompt, options)
    return prompts, negatives, prepare(model, image, mask_image, len(prompts), options)
