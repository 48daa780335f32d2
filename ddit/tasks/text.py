"""What the text tasks share: from loaded images and prompts to a running text loop (the checks, one tokenisation
of each prompt, the layout of prompt and response slot)."""

from __future__ import annotations

from typing import Iterator

from ..checks import as_integer, check_text_length, check_text_positions
from ..image_inputs import load_image
from .base import Model, TextOptions


def as_list(value, name: str) -> list:
    """``value`` as a non-empty list (a single item becomes a list of one)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"`{name}` is an empty list.")
    return items


def unknown_words(tokenizer, text: str) -> list[str]:
    """The words of ``text`` the tokenizer reads as unknown (a closed word-level vocabulary's missing words; a
    sentencepiece tokenizer such as T5's reads every word)."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return []
    return [w for w in text.split() if unk in tokenizer(w, add_special_tokens=False)["input_ids"]]


def load_images(image) -> list:
    """One image or a list of them, each read once (``ddit.image_inputs.load_image``)."""
    return [load_image(i) for i in as_list(image, "image")]


def text_task_steps(model: Model, images: list | None, prompts: list[str], options: TextOptions, generator=None, *,
                    total_length: int | None = None, reveal_per_step: int | None = None,
                    reuse_predictions: bool = True) -> Iterator:
    """Validate now; return an iterator of ``TextStep`` that in-fills a response slot after each prompt.

    ``images``: loaded images, one per prompt or one for all, or None (the null image). ``total_length`` fixes each
    row's length, prompt included (the slot is what the prompt leaves, at least ``options.max_length``); None: the
    longest prompt plus ``options.max_length``. ``reuse_predictions`` skips the forward pass after a step that
    revealed nothing (the tokens, hence p(x0 | x_t), are unchanged); False runs the model at every step, with the
    same result. ``reveal_per_step`` (for watching): a step that commits more tokens than this commits them this
    many at a time, most confident first, each part a state of its own reusing the step's forward pass.
    """
    from ..text_layout import layout_ids, prompt_ids  # torch: imported when a task runs, not with its options
    from ..text_sampling import longest, text_steps

    if not all(isinstance(p, str) for p in prompts):
        raise ValueError("`prompt` must be a string or a list of strings.")
    if images is not None and len(images) not in (1, len(prompts)):
        raise ValueError(f"Got {len(images)} images for {len(prompts)} prompts.")
    most, setting = options.max_prompt_length, "max_prompt_length"
    if total_length is not None and total_length - options.max_length < most:
        most, setting = total_length - options.max_length, "total_length, less a token for the answer"
    heads = [prompt_ids(model.tokenizer, p, 10**9) for p in prompts]  # whole: a longer prompt is refused, not cut
    check_text_length([len(h) for h in heads], prompts, most, "prompt (question or instruction in the model's "
                      "template)", setting)
    batch = layout_ids(model.tokenizer, heads, options.max_length, total_length=total_length)
    check_text_positions(longest(options, batch), model.max_text_positions, "The prompt and its answer slot")
    if reveal_per_step is not None and not 1 <= as_integer(reveal_per_step, "reveal_per_step"):
        raise ValueError(f"`reveal_per_step` must be at least 1 (or None), got {reveal_per_step}.")
    return text_steps(model, batch, images, options, generator, reuse_predictions, reveal_per_step)
