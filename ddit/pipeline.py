"""``DualDiffusionPipeline``: text-to-image, captioning and VQA with one D-DiT (diffusers-style).

Each task has one step iterator (``iter_generate``, ``iter_caption``, ``iter_answer``) that yields the
state after every denoising step; ``__call__``, ``caption``, ``answer``, the CLI and the app only
consume them. Glossary: b - batch, c - latent channels, h, w - latent size, l - text tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from . import loading
from .checks import (MAX_TEXT_TOKENS, as_integer, check_guidance, check_guidance_interval, check_steps,
                     check_text_decoding, check_text_length, check_text_positions)
from .image_inputs import load_image, resize_and_center_crop
from .latents import check_preview_decoder, decode_latents, encode_latents, vae_scale_factor
from .lora import LoraMixin
from .image_sampling import ImageStep, image_steps
from .task_defaults import TaskDefaults, append_instruction
from .text_layout import decode_responses, end_token_id, layout, mask_token_id, prompt_ids
from .text_sampling import TextDecoding, TextStep, text_steps
from .text_scheduler import SAMPLERS


@dataclass
class DualDiffusionImageOutput(BaseOutput):
    images: list[PIL.Image.Image] | torch.Tensor


@dataclass
class DualDiffusionTextOutput(BaseOutput):
    text: list[str]
    token_ids: torch.LongTensor
    forward_passes: int | None = None  # transformer calls the batch took


def _as_list(value, name: str) -> list:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"`{name}` is an empty list.")
    return items


class DualDiffusionPipeline(DiffusionPipeline, LoraMixin):
    """One D-DiT for text-to-image, image captioning and visual question answering.

    Components: ``transformer`` (:class:`DualDiffusionTransformer`), ``vae`` (``AutoencoderKL``),
    ``text_encoder`` (a bidirectional transformers encoder), ``tokenizer`` (with a mask token), and
    ``scheduler`` (``FlowMatchEulerDiscreteScheduler``). ``task_defaults`` (saved with the model) sets
    what calling a task with no options does. LoRA adapters: ``load_lora_weights``, ``fuse_lora`` (``ddit.lora``).
    Optional: ``preview_decoder``, a small ``AutoencoderTiny`` for the VAE's latents (``decode_preview``).
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components = ["preview_decoder"]

    def __init__(self, transformer, vae, text_encoder, tokenizer, scheduler, task_defaults: dict | None = None,
                 preview_decoder=None):
        super().__init__()
        if preview_decoder is not None:
            check_preview_decoder(vae, preview_decoder)
        self.register_modules(
            transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
            preview_decoder=preview_decoder,
        )
        self.defaults = TaskDefaults.from_dict(task_defaults)
        self.register_to_config(task_defaults=self.defaults.to_dict())
        self.vae_scale_factor = vae_scale_factor(vae)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        self.mask_token_id = mask_token_id(tokenizer)
        self.end_token_id = end_token_id(tokenizer)
        self._interrupt = False

    from_pretrained = classmethod(loading.load_pipeline)

    # ---------------------------------------------------------------- shared pieces
    @property
    def resolution(self) -> int:
        """Default image side in pixels."""
        return self.defaults.resolution or self.transformer.config.sample_size * self.vae_scale_factor

    def interrupt(self) -> None:
        """Ask a running step iterator to stop after the current step."""
        self._interrupt = True

    def encode_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Text-encoder states (b, l, d) for token ids (b, l); no attention mask (the encoder is bidirectional)."""
        out = self.text_encoder(input_ids=input_ids.to(self._execution_device))
        return out.last_hidden_state.to(self.transformer.dtype)

    def encode_prompt(self, prompts: list[str], max_sequence_length: int) -> torch.Tensor:
        """Encode T2I prompts, padded to ``max_sequence_length`` (b, l, d)."""
        ids = self.tokenizer(prompts, padding="max_length", max_length=max_sequence_length, truncation=True,
                             return_tensors="pt")["input_ids"]
        return self.encode_tokens(ids)

    @torch.no_grad()
    def encode_image(self, images: list) -> torch.Tensor:
        """Images (any of ``load_image``'s inputs) -> normalised VAE latents (b, c, h, w), each image brought to
        the model's side by a short-side resize and a centre crop (the authors' text-task preprocessing)."""
        side = self.resolution
        pil = [resize_and_center_crop(load_image(image), side) for image in images]
        pixels = self.image_processor.preprocess(pil, height=side, width=side)
        pixels = pixels.to(self._execution_device, self.vae.dtype)
        return encode_latents(self.vae, pixels).to(self.transformer.dtype)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, output_type: str = "pil"):
        """Normalised latents -> images (``"pil"``, ``"np"`` or ``"pt"``; ``"latent"`` returns them as is)."""
        if output_type == "latent":
            return latents
        pixels = decode_latents(self.vae, latents)
        return self.image_processor.postprocess(pixels, output_type=output_type)

    @torch.no_grad()
    def decode_preview(self, latents: torch.Tensor, output_type: str = "pil"):
        """A quick look at normalised latents (e.g. a step's ``pred_clean``): decoded by the ``preview_decoder``
        when the pipeline has one (a few % of a step's time instead of more than a step), else by the VAE as
        ``decode_latents`` does. Final images should use ``decode_latents``."""
        if self.preview_decoder is None or output_type == "latent":
            return self.decode_latents(latents, output_type)
        pixels = decode_latents(self.preview_decoder, latents)
        return self.image_processor.postprocess(pixels, output_type=output_type)

    # ---------------------------------------------------------------- text-to-image
    def check_inputs(self, prompt, num_inference_steps: int, guidance_scale: float, height: int, width: int,
                     negative_prompt=None) -> None:
        """Raise ``ValueError`` for T2I inputs that cannot give a meaningful result (``ddit.checks`` states what
        steps and guidance may be; prompts longer than ``max_sequence_length`` tokens are refused, not cut)."""
        prompts = _as_list(prompt, "prompt")
        if not all(isinstance(p, str) for p in prompts):
            raise ValueError("`prompt` must be a string or a list of strings.")
        if not all(p.strip() for p in prompts):
            raise ValueError("`prompt` is empty; describe the image you want.")
        negatives = _as_list(negative_prompt if negative_prompt is not None else "", "negative_prompt")
        if len(negatives) not in (1, len(prompts)) or not all(isinstance(n, str) for n in negatives):
            raise ValueError("`negative_prompt` must be one string or one string per prompt.")
        check_steps(num_inference_steps)
        check_guidance(guidance_scale)
        for what, texts in (("prompt", prompts), ("negative prompt", negatives)):
            lengths = [len(self.tokenizer(t)["input_ids"]) for t in texts]
            check_text_length(lengths, texts, self.defaults.max_sequence_length, what, "max_sequence_length")
        multiple = self.vae_scale_factor * self.transformer.config.patch_size
        for name, side in (("height", height), ("width", width)):
            if side < multiple or side % multiple:
                raise ValueError(f"`{name}` must be a positive multiple of {multiple}, got {side}.")
        max_side = self.transformer.config.pos_embed_max_size * self.vae_scale_factor
        if max(height, width) > max_side:
            raise ValueError(f"`height`/`width` can be at most {max_side} for this model.")

    def iter_generate(
        self, prompt: str | list[str], negative_prompt: str | list[str] | None = None,
        num_inference_steps: int | None = None, guidance_scale: float | None = None, height: int | None = None,
        width: int | None = None, generator: torch.Generator | None = None, latents: torch.Tensor | None = None,
        callback_on_step_end: Callable | None = None, callback_on_step_end_tensor_inputs: tuple[str, ...] = ("latents",),
        guidance_interval: tuple[float, float] | None = None,
    ) -> Iterator[ImageStep]:
        """Validate the inputs now and return an iterator of :class:`ImageStep`, one per transformer call of
        ``self.scheduler`` (one per step for Euler, DPM-Solver++ and UniPC; Heun calls twice).

        ``guidance_interval`` ([low, high] in sigma, 1 = noise): guide only there, elsewhere one conditional pass
        (default: the model's ``task_defaults``, None = every step). ``callback_on_step_end(pipe, i, t,
        {"latents": ...})`` may return ``{"latents": new}`` to replace them.
        """
        d = self.defaults
        steps, scale = _pick(num_inference_steps, d.image_steps), _pick(guidance_scale, d.guidance_scale)
        height, width = _pick(height, self.resolution), _pick(width, self.resolution)
        self.check_inputs(prompt, steps, scale, height, width, negative_prompt)
        steps, scale = int(steps), float(scale)
        interval = check_guidance_interval(_pick(guidance_interval, d.guidance_interval))
        prompts = _as_list(prompt, "prompt")
        negatives = _as_list(negative_prompt if negative_prompt is not None else "", "negative_prompt")
        negatives = negatives * len(prompts) if len(negatives) == 1 else negatives
        unknown = set(callback_on_step_end_tensor_inputs) - {"latents", "pred_clean"}
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs may name latents and pred_clean, not {unknown}.")
        shape = (len(prompts), self.transformer.config.in_channels, height // self.vae_scale_factor,
                 width // self.vae_scale_factor)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=self._execution_device, dtype=torch.float32)
        return image_steps(self, prompts, negatives, steps, scale, latents, callback_on_step_end,
                           tuple(callback_on_step_end_tensor_inputs), interval)

    def __call__(
        self, prompt: str | list[str], negative_prompt: str | list[str] | None = None,
        num_inference_steps: int | None = None, guidance_scale: float | None = None, height: int | None = None,
        width: int | None = None, generator: torch.Generator | None = None, output_type: str = "pil",
        callback_on_step_end: Callable | None = None, callback_on_step_end_tensor_inputs: tuple[str, ...] = ("latents",),
        return_dict: bool = True, guidance_interval: tuple[float, float] | None = None,
    ) -> DualDiffusionImageOutput | tuple:
        """Generate images from text. Unset options take the model's ``task_defaults``; the solver and its
        timestep shift are the scheduler's (``ddit.image_sampling.flow_scheduler``)."""
        state = None
        iterator = self.iter_generate(prompt, negative_prompt, num_inference_steps, guidance_scale, height, width,
                                      generator, None, callback_on_step_end, callback_on_step_end_tensor_inputs,
                                      guidance_interval)
        with self.progress_bar(total=_pick(num_inference_steps, self.defaults.image_steps)) as bar:
            for state in iterator:
                if bar.total != state.num_steps:  # Heun calls the model twice per step
                    bar.total = state.num_steps
                bar.update()
        if state is None:
            raise RuntimeError("Sampling was interrupted before the first step.")
        images = self.decode_latents(state.latents, output_type)
        return DualDiffusionImageOutput(images=images) if return_dict else (images,)

    # ---------------------------------------------------------------- image-to-text
    def iter_text(
        self, image, prompt: str | list[str], num_inference_steps: int, max_length: int, sampler: str,
        generator: torch.Generator | None = None, threshold: float | None = None,
        reuse_predictions: bool = True, total_length: int | None = None, block_length: int | None = None,
        max_new_tokens: int | None = None, eos_early_stop: bool = False, reveal_per_step: int | None = None,
    ) -> Iterator[TextStep]:
        """Validate now; return an iterator of :class:`TextStep` that in-fills a response slot after each prompt.

        ``image`` is one image, a list (one per prompt, or one for all), or None (the null image).
        ``reuse_predictions`` skips the forward pass after a step that revealed nothing ("ddpm_cache": the
        tokens, hence p(x0 | x_t), are unchanged); False runs the model at every step, with the same result.
        ``total_length`` fixes each row's length, prompt included (the slot is what the prompt leaves, at least
        ``max_length``); None: the longest prompt plus ``max_length``. ``threshold``, ``block_length``,
        ``max_new_tokens`` and ``eos_early_stop`` set how the loop decodes (``ddit.text_sampling``).
        ``reveal_per_step`` (for watching): a step that commits more tokens than this commits them this many at a
        time, most confident first, each part a step of its own that reuses the step's forward pass; the tokens
        and the number of passes are the same as without it.
        """
        prompts = _as_list(prompt, "prompt")
        if not all(isinstance(p, str) for p in prompts):
            raise ValueError("`prompt` must be a string or a list of strings.")
        num_inference_steps = check_steps(num_inference_steps)
        if sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r}; choose one of {SAMPLERS}.")
        max_length = as_integer(max_length, "max_length")
        if not 1 <= max_length <= MAX_TEXT_TOKENS:
            raise ValueError(f"`max_length` must be between 1 and {MAX_TEXT_TOKENS}, got {max_length}.")
        decoding = TextDecoding(*check_text_decoding(threshold, block_length, max_new_tokens, sampler, max_length),
                                eos_early_stop=bool(eos_early_stop))
        images = None
        if image is not None:
            images = [load_image(i) for i in _as_list(image, "image")]
            if len(images) not in (1, len(prompts)):
                raise ValueError(f"Got {len(images)} images for {len(prompts)} prompts.")
        longest, setting = self.defaults.max_prompt_length, "max_prompt_length"
        if total_length is not None and total_length - max_length < longest:
            longest, setting = total_length - max_length, "answer_total_length, less a token for the answer"
        lengths = [len(prompt_ids(self.tokenizer, p, 10**9)) for p in prompts]
        check_text_length(lengths, prompts, longest, "prompt (question or instruction in the model's template)",
                          setting)
        batch = layout(self.tokenizer, prompts, max_length, max_prompt_length=longest, total_length=total_length)
        check_text_positions(decoding.longest(batch), getattr(self.text_encoder.config, "max_position_embeddings",
                                                              None), "The prompt and its answer slot")
        if reveal_per_step is not None and not 1 <= as_integer(reveal_per_step, "reveal_per_step"):
            raise ValueError(f"`reveal_per_step` must be at least 1 (or None), got {reveal_per_step}.")
        return text_steps(self, batch, images, num_inference_steps, sampler, generator, decoding, reuse_predictions,
                          reveal_per_step)

    def decode_text(self, state: TextStep) -> list[str]:
        """Response text of each row of a text state, cut at the first EOS/PAD."""
        return decode_responses(self.tokenizer, state.token_ids.cpu(), state.response_mask.cpu())

    def iter_caption(self, image, prompt: str | list[str] | None = None, num_inference_steps: int | None = None,
                     max_length: int | None = None, sampler: str | None = None,
                     generator: torch.Generator | None = None, threshold: float | None = None,
                     block_length: int | None = None, max_new_tokens: int | None = None,
                     eos_early_stop: bool | None = None, reveal_per_step: int | None = None) -> Iterator[TextStep]:
        """Step iterator for captioning; ``prompt`` is an optional instruction (default: the model's)."""
        d = self.defaults
        images = _as_list(image, "image")
        prompts = _as_list(prompt if prompt is not None else d.caption_prompt, "prompt")
        if len(prompts) == 1:
            prompts = prompts * len(images)
        sampler = _pick(sampler, d.caption_sampler)
        return self.iter_text(images, prompts, _pick(num_inference_steps, d.caption_steps),
                              _pick(max_length, d.caption_length), sampler, generator,
                              reveal_per_step=reveal_per_step,
                              **d.text_decoding("caption", sampler, threshold, block_length, max_new_tokens,
                                                eos_early_stop))

    def iter_answer(self, image, question: str | list[str], num_inference_steps: int | None = None,
                    max_length: int | None = None, sampler: str | None = None,
                    generator: torch.Generator | None = None, short_answer: bool = False,
                    threshold: float | None = None, block_length: int | None = None,
                    max_new_tokens: int | None = None, eos_early_stop: bool | None = None,
                    reveal_per_step: int | None = None) -> Iterator[TextStep]:
        """Step iterator for VQA: the question, in the model's template, stays fixed; the answer is in-filled.

        ``short_answer`` appends ``SHORT_ANSWER_INSTRUCTION`` to each question (the released checkpoints'
        short-answer prompt). With ``answer_total_length`` in the defaults and no ``max_length``, each sequence
        is that long in total, question included (the released SFT layout).
        """
        d = self.defaults
        questions = _as_list(question, "question")
        if not all(isinstance(q, str) and q.strip() for q in questions):
            raise ValueError("`question` is empty; ask something about the image.")
        questions = [append_instruction(q.strip()) if short_answer else q.strip() for q in questions]
        prompts = [d.question_template.format(question=q) for q in questions]
        total = d.answer_total_length if max_length is None else None
        sampler = _pick(sampler, d.answer_sampler)
        return self.iter_text(image, prompts, _pick(num_inference_steps, d.answer_steps),
                              1 if total else _pick(max_length, d.answer_length), sampler, generator,
                              total_length=total, reveal_per_step=reveal_per_step,
                              **d.text_decoding("answer", sampler, threshold, block_length, max_new_tokens,
                                                eos_early_stop))

    def _run_text(self, iterator: Iterator[TextStep]) -> DualDiffusionTextOutput:
        state = next(iterator, None)
        if state is None:
            raise RuntimeError("Sampling was interrupted before the first step.")
        with self.progress_bar(total=state.num_steps) as bar:
            bar.update()
            for state in iterator:
                bar.total = state.num_steps  # the most steps: adaptive decoding ends earlier, appended blocks add
                bar.update()
            bar.total = bar.n  # an early end is a finished run, not a stalled one
            bar.refresh()
        return DualDiffusionTextOutput(text=self.decode_text(state), token_ids=state.token_ids,
                                       forward_passes=state.forward_passes)

    def caption(self, image, prompt: str | list[str] | None = None, num_inference_steps: int | None = None,
                max_length: int | None = None, sampler: str | None = None,
                generator: torch.Generator | None = None, threshold: float | None = None,
                block_length: int | None = None, max_new_tokens: int | None = None,
                eos_early_stop: bool | None = None) -> DualDiffusionTextOutput:
        """Describe one image or a list of images. Unset options take the model's ``task_defaults``."""
        return self._run_text(self.iter_caption(image, prompt, num_inference_steps, max_length, sampler, generator,
                                                threshold, block_length, max_new_tokens, eos_early_stop))

    def answer(self, image, question: str | list[str], num_inference_steps: int | None = None,
               max_length: int | None = None, sampler: str | None = None,
               generator: torch.Generator | None = None, short_answer: bool = False,
               threshold: float | None = None, block_length: int | None = None,
               max_new_tokens: int | None = None, eos_early_stop: bool | None = None) -> DualDiffusionTextOutput:
        """Answer question(s) about image(s). Unset options take the model's ``task_defaults``;
        ``short_answer`` asks for a single word or phrase (see ``iter_answer``)."""
        return self._run_text(self.iter_answer(image, question, num_inference_steps, max_length, sampler, generator,
                                               short_answer, threshold, block_length, max_new_tokens,
                                               eos_early_stop))


def _pick(value, default):
    """The caller's value unless it is None (0 and "" are values, and get checked)."""
    return default if value is None else value
