"""``DualDiffusionPipeline``: text-to-image, in-painting, captioning, in-filling, VQA and scoring with one D-DiT
(diffusers-style).

The pipeline holds the components and the model's saved defaults; each task lives in its own module of
``ddit.tasks`` (its options, checks and loop), and the pipeline exposes it as a step iterator (``iter_generate``,
``iter_caption``, ``iter_answer``, ``iter_infill``, ``iter_inpaint``) that yields the state after every denoising
step, and a one-call method (``__call__``, ``caption``, ``answer``, ``infill``, ``inpaint``) that runs it to the end;
scoring is one call (``score_texts``, ``score_images``). The CLI and the app only consume them. Options are passed by
keyword; unset ones take the model's ``task_defaults``. Glossary: b - batch, c - latent channels, h, w - latent
size, l - text tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput

from . import loading
from .image_inputs import load_image, resize_and_center_crop
from .image_sampling import ImageStep
from .latents import check_preview_decoder, decode_latents, encode_latents, vae_scale_factor
from .lora import LoraMixin
from .task_defaults import TaskDefaults
from .tasks.answer import answer_steps
from .tasks.base import Model
from .tasks.caption import caption_steps
from .tasks.generate import generate_steps
from .tasks.infill import infill_steps
from .tasks.inpaint import InpaintOptions, check_inputs, inpaint_steps, pixel_keep
from .tasks.inpaint import prepare as prepare_inpaint
from .tasks.score import score_images, score_texts
from .tasks.text import as_list, load_images, text_task_steps
from .text_layout import decode_responses, end_token_id, mask_token_id
from .text_sampling import TextStep


@dataclass
class DualDiffusionImageOutput(BaseOutput):
    images: list[PIL.Image.Image] | torch.Tensor


@dataclass
class DualDiffusionScoreOutput(BaseOutput):
    scores: list[float]  # one per candidate, higher = fits better; compare candidates scored in one call
    forward_passes: int | None = None  # transformer passes per candidate


@dataclass
class DualDiffusionTextOutput(BaseOutput):
    text: list[str]
    token_ids: torch.LongTensor
    forward_passes: int | None = None  # transformer calls the batch took


class DualDiffusionPipeline(DiffusionPipeline, LoraMixin):
    """One D-DiT for text-to-image, in-painting, image captioning, in-filling, visual question answering and scoring.

    Components: ``transformer`` (:class:`DualDiffusionTransformer`), ``vae`` (``AutoencoderKL``),
    ``text_encoder`` (a bidirectional transformers encoder), ``tokenizer`` (with a mask token), and
    ``scheduler`` (a diffusers flow-matching scheduler). ``task_defaults`` (saved with the model) sets what calling
    a task with no options does (:class:`ddit.task_defaults.TaskDefaults`). LoRA adapters: ``load_lora_weights``,
    ``fuse_lora`` (``ddit.lora``). Optional: ``preview_decoder``, a small ``AutoencoderTiny`` for the VAE's latents
    (``decode_preview``).
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

    @property
    def interrupt(self) -> bool:
        """True once a running step iterator was asked to stop after its current step (diffusers' convention: set it
        from a ``callback_on_step_end``, or ``pipe.interrupt = True`` between steps). Each new run clears it."""
        return self._interrupt

    @interrupt.setter
    def interrupt(self, value: bool) -> None:
        self._interrupt = bool(value)

    def _model(self) -> Model:
        """What a task's loop may use, handed to it explicitly; a new run clears ``interrupt``."""
        self._interrupt = False
        return Model(transformer=self.transformer, scheduler=self.scheduler, tokenizer=self.tokenizer,
                     device=self._execution_device, resolution=self.resolution, vae_scale_factor=self.vae_scale_factor,
                     mask_token_id=self.mask_token_id, end_token_id=self.end_token_id,
                     encode_tokens=self.encode_tokens, encode_prompt=self.encode_prompt,
                     encode_image=self.encode_image,
                     max_text_positions=getattr(self.text_encoder.config, "max_position_embeddings", None),
                     stopped=lambda: self._interrupt)

    def _step_callback(self, callback_on_step_end: Callable | None) -> Callable | None:
        """diffusers' ``callback_on_step_end(pipe, i, t, tensors)`` as the image loop calls it, ``(i, t, tensors)``."""
        if callback_on_step_end is None:
            return None
        return lambda i, t, tensors: callback_on_step_end(self, i, t, tensors)

    @torch.no_grad()
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
    def encode_image(self, images: list, height: int | None = None, width: int | None = None) -> torch.Tensor:
        """Images (any of ``load_image``'s inputs) -> normalised VAE latents (b, c, h, w), each image brought to
        ``height`` x ``width`` (default: the model's side) by a resize and a centre crop (the authors' text-task
        preprocessing)."""
        height, width = height or self.resolution, width or self.resolution
        pil = [resize_and_center_crop(load_image(image), width, height) for image in images]
        pixels = self.image_processor.preprocess(pil, height=height, width=width)
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
    def iter_generate(self, prompt: str | list[str], negative_prompt: str | list[str] | None = None, *,
                      generator: torch.Generator | None = None, latents: torch.Tensor | None = None,
                      callback_on_step_end: Callable | None = None,
                      callback_on_step_end_tensor_inputs: tuple[str, ...] = ("latents",),
                      **options) -> Iterator[ImageStep]:
        """Validate the inputs now and return an iterator of :class:`ImageStep`, one per transformer call.

        ``options``: any field of :class:`ddit.tasks.generate.GenerateOptions` (``num_inference_steps``,
        ``guidance_scale``, ``guidance_interval``, ``height``, ``width``, ``max_sequence_length``); unset ones take the
        model's. ``callback_on_step_end(pipe, i, t, {"latents": ...})`` may return ``{"latents": new}``.
        """
        chosen = self.defaults.generate.merged(**options)
        return generate_steps(self._model(), prompt, negative_prompt, chosen, generator=generator, latents=latents,
                              callback=self._step_callback(callback_on_step_end),
                              callback_inputs=tuple(callback_on_step_end_tensor_inputs))

    def __call__(self, prompt: str | list[str], negative_prompt: str | list[str] | None = None, *,
                 generator: torch.Generator | None = None, output_type: str = "pil", return_dict: bool = True,
                 **options) -> DualDiffusionImageOutput | tuple:
        """Generate images from text. ``options`` as ``iter_generate``'s (callbacks included); the solver and its
        timestep shift are the scheduler's (``ddit.image_sampling.flow_scheduler``)."""
        state = self._last_state(self.iter_generate(prompt, negative_prompt, generator=generator, **options))
        images = self.decode_latents(state.latents, output_type)
        return DualDiffusionImageOutput(images=images) if return_dict else (images,)

    # ---------------------------------------------------------------- in-painting
    def iter_inpaint(self, image, mask_image, prompt: str | list[str], negative_prompt: str | list[str] | None = None,
                     *, generator: torch.Generator | None = None, latents: torch.Tensor | None = None,
                     callback_on_step_end: Callable | None = None,
                     callback_on_step_end_tensor_inputs: tuple[str, ...] = ("latents",),
                     **options) -> Iterator[ImageStep]:
        """Validate now and return an iterator of :class:`ImageStep` that repaints the white part of ``mask_image``
        in ``image`` to fit ``prompt`` (diffusers' convention) and keeps the rest; one image and mask, or one per
        prompt. ``options``: any field of :class:`ddit.tasks.inpaint.InpaintOptions` (the image options and
        ``strength``); unset ones take the model's generate defaults. A step's ``pred_clean`` holds the kept
        latents outside the mask; ``decode_inpainted`` turns the last step's latents into images."""
        chosen = InpaintOptions(**self.defaults.generate.to_dict()).merged(**options)
        model = self._model()
        prompts, negatives, inputs = check_inputs(model, image, mask_image, prompt, negative_prompt, chosen)
        return inpaint_steps(model, inputs, prompts, negatives, chosen, generator=generator, latents=latents,
                             callback=self._step_callback(callback_on_step_end),
                             callback_inputs=tuple(callback_on_step_end_tensor_inputs))

    @torch.no_grad()
    def decode_inpainted(self, latents: torch.Tensor, image, mask_image, output_type: str = "pil",
                         paste_kept: bool = True, height: int | None = None, width: int | None = None):
        """In-painted latents -> images; with ``paste_kept`` the kept pixels are the given image's own (exact), not
        their VAE decoding. ``image``, ``mask_image``, ``height``, ``width``: those of the run."""
        if output_type == "latent":
            return latents
        pixels = decode_latents(self.vae, latents).float().cpu()
        if paste_kept:
            options = InpaintOptions(height=height, width=width)
            inputs = prepare_inpaint(self._model(), image, mask_image, latents.shape[0], options)
            given = self.image_processor.preprocess(inputs.images, height=inputs.height, width=inputs.width).float()
            keep = pixel_keep(inputs.masks)
            pixels = keep * given + (1.0 - keep) * pixels
        return self.image_processor.postprocess(pixels, output_type=output_type)

    def inpaint(self, image, mask_image, prompt: str | list[str], negative_prompt: str | list[str] | None = None, *,
                generator: torch.Generator | None = None, output_type: str = "pil", return_dict: bool = True,
                paste_kept: bool = True, **options) -> DualDiffusionImageOutput | tuple:
        """Repaint the white part of ``mask_image`` in ``image`` to fit ``prompt``; ``options`` as ``iter_inpaint``'s.
        ``paste_kept``: the kept pixels of the result are the given image's own (exact), not their VAE decoding."""
        state = self._last_state(self.iter_inpaint(image, mask_image, prompt, negative_prompt, generator=generator,
                                                   **options))
        images = self.decode_inpainted(state.latents, image, mask_image, output_type, paste_kept,
                                       options.get("height"), options.get("width"))
        return DualDiffusionImageOutput(images=images) if return_dict else (images,)

    # ---------------------------------------------------------------- image-to-text
    def iter_text(self, image, prompt: str | list[str], *, generator: torch.Generator | None = None,
                  total_length: int | None = None, reveal_per_step: int | None = None, reuse_predictions: bool = True,
                  **options) -> Iterator[TextStep]:
        """In-fill a response slot after free-form prompt(s), conditioned on image(s) (None: the null image): the
        loop under the caption and answer tasks. ``options``: any field of :class:`ddit.tasks.base.TextOptions`
        (unset: the caption task's defaults); the keywords as ``ddit.tasks.text.text_task_steps`` states them."""
        chosen = self.defaults.caption.merged(**options)
        images = None if image is None else load_images(image)
        return text_task_steps(self._model(), images, as_list(prompt, "prompt"), chosen, generator,
                               total_length=total_length, reveal_per_step=reveal_per_step,
                               reuse_predictions=reuse_predictions)

    def iter_caption(self, image, prompt: str | list[str] | None = None, *, generator: torch.Generator | None = None,
                     reveal_per_step: int | None = None, **options) -> Iterator[TextStep]:
        """Step iterator for captioning one image or a list; ``prompt`` is an optional instruction (default: the
        model's). ``options``: any field of :class:`ddit.tasks.caption.CaptionOptions`. ``reveal_per_step`` (for
        watching): a step's tokens are committed this many at a time, each part a state reusing the step's pass."""
        chosen = self.defaults.caption.merged(prompt=prompt, **options)
        return caption_steps(self._model(), image, chosen, generator, reveal_per_step)

    def iter_answer(self, image, question: str | list[str], *, generator: torch.Generator | None = None,
                    reveal_per_step: int | None = None, **options) -> Iterator[TextStep]:
        """Step iterator for VQA: the question, in the model's template, stays fixed; the answer is in-filled.
        ``options``: any field of :class:`ddit.tasks.answer.AnswerOptions` (``short_answer=True`` appends the
        released checkpoints' short-answer instruction)."""
        chosen = self.defaults.answer.merged(**options)
        return answer_steps(self._model(), image, question, chosen, generator, reveal_per_step)

    def iter_infill(self, image, template: str | list[str], *, generator: torch.Generator | None = None,
                    reveal_per_step: int | None = None, **options) -> Iterator[TextStep]:
        """Step iterator for in-filling: in ``template`` each ``_`` is one token the model fills, every other word
        is kept at its place, and the text ends where the template ends. ``options``: the caption's
        (:class:`ddit.tasks.caption.CaptionOptions`; ``max_length`` and ``max_new_tokens`` do not apply)."""
        chosen = self.defaults.caption.merged(**options)
        return infill_steps(self._model(), image, template, chosen, generator, reveal_per_step)

    def infill(self, image, template: str | list[str], *, generator: torch.Generator | None = None,
               **options) -> DualDiffusionTextOutput:
        """Fill the blanks (``_``) of one template or a list of them (one per image, or one for all images);
        ``options`` as ``iter_infill``'s."""
        return self._run_text(self.iter_infill(image, template, generator=generator, **options))

    # ---------------------------------------------------------------- scoring
    def score_texts(self, image, texts: list[str], *, generator: torch.Generator | None = None,
                    **options) -> DualDiffusionScoreOutput:
        """How well each text fits one image: a lower bound of log p(text | image), summed over its tokens, from
        ``num_samples`` timesteps shared by every candidate (``ddit.tasks.score``). ``options``: any field of
        :class:`ddit.tasks.score.ScoreOptions`."""
        chosen = self.defaults.score.merged(**options)
        scores, passes = score_texts(self._model(), image, texts, chosen, generator)
        return DualDiffusionScoreOutput(scores=scores, forward_passes=passes)

    def score_images(self, prompt: str, images: list, *, generator: torch.Generator | None = None,
                     **options) -> DualDiffusionScoreOutput:
        """How well each image fits one prompt: minus its flow-matching loss given the prompt, with the same
        timesteps and noise for every candidate (``ddit.tasks.score``); ``options`` as ``score_texts``'."""
        chosen = self.defaults.score.merged(**options)
        scores, passes = score_images(self._model(), prompt, images, chosen, generator, self.defaults.generate)
        return DualDiffusionScoreOutput(scores=scores, forward_passes=passes)

    def decode_text(self, state: TextStep) -> list[str]:
        """Response text of each row of a text state, cut at the first EOS/PAD."""
        return decode_responses(self.tokenizer, state.token_ids.cpu(), state.response_mask.cpu())

    def _last_state(self, iterator: Iterator):
        """Run a step iterator to its end under a progress bar; its last state."""
        state = next(iterator, None)
        if state is None:
            raise RuntimeError("Sampling was interrupted before the first step.")
        with self.progress_bar(total=state.num_steps) as bar:
            bar.update()
            for state in iterator:
                bar.total = state.num_steps  # Heun calls twice per step; adaptive text decoding ends earlier
                bar.update()
            bar.total = bar.n  # an early end is a finished run, not a stalled one
            bar.refresh()
        return state

    def _run_text(self, iterator: Iterator[TextStep]) -> DualDiffusionTextOutput:
        state = self._last_state(iterator)
        return DualDiffusionTextOutput(text=self.decode_text(state), token_ids=state.token_ids,
                                       forward_passes=state.forward_passes)

    def caption(self, image, prompt: str | list[str] | None = None, *, generator: torch.Generator | None = None,
                **options) -> DualDiffusionTextOutput:
        """Describe one image or a list of images; ``options`` as ``iter_caption``'s."""
        return self._run_text(self.iter_caption(image, prompt, generator=generator, **options))

    def answer(self, image, question: str | list[str], *, generator: torch.Generator | None = None,
               **options) -> DualDiffusionTextOutput:
        """Answer question(s) about image(s); ``options`` as ``iter_answer``'s."""
        return self._run_text(self.iter_answer(image, question, generator=generator, **options))

