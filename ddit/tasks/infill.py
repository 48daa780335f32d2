"""In-filling: some words of the text given, the rest filled by the model (image + template -> text).

In a template each ``_`` is one token for the model to fill and every other word is kept verbatim at its place;
the text ends where the template ends. Training masks each response token independently, so a slot with some
tokens fixed and the others masked is one the model has learned to complete (docs/design.md §2.2); the samplers
never change a token that is not masked, so the given words stay. The caption's options apply (sampler, steps,
threshold, blocks, early stop); the slot is the template's, so ``max_length`` and ``max_new_tokens`` do not.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from ..checks import check_text_positions
from .base import Model
from .caption import CaptionOptions
from .text import as_list, load_images, unknown_words

BLANK = "_"


def template_ids(model: Model, template: str) -> list[int]:
    """A template's slot: the mask token for each ``_``, the tokens of every other word, then the end token."""
    if not isinstance(template, str) or BLANK not in template.split():
        raise ValueError(f"A template needs at least one `{BLANK}` (a word to fill), got {template!r}.")
    unknown = unknown_words(model.tokenizer, " ".join(w for w in template.split() if w != BLANK))
    if unknown:
        raise ValueError(f"Not in the model's vocabulary: {', '.join(unknown)} (in the template {template!r}).")
    ids = []
    for word in template.split():
        ids.extend([model.mask_token_id] if word == BLANK else
                   model.tokenizer(word, add_special_tokens=False)["input_ids"])
    return ids + [model.end_token_id]


def infill_steps(model: Model, image, template, options: CaptionOptions, generator=None,
                 reveal_per_step: int | None = None) -> Iterator:
    """Validate now; return the ``TextStep`` iterator filling the blanks of each template (one for all images, or
    one per image), after the caption's instruction ``options.prompt``."""
    from ..text_layout import layout_ids, prompt_ids  # torch: imported when a task runs, not with its options
    from ..text_sampling import text_steps

    images = load_images(image)
    templates = as_list(template, "template")
    if len(templates) not in (1, len(images)) and len(images) != 1:
        raise ValueError(f"Got {len(templates)} templates for {len(images)} images.")
    rows = max(len(templates), len(images))
    slots = [template_ids(model, t) for t in (templates * rows if len(templates) == 1 else templates)]
    prompts = as_list(options.prompt, "prompt")
    heads = [prompt_ids(model.tokenizer, p, options.max_prompt_length) for p in
             (prompts * rows if len(prompts) == 1 else prompts)]
    length = max(len(h) + len(s) for h, s in zip(heads, slots))  # a shorter row's slot ends in end-token padding
    check_text_positions(length, model.max_text_positions, "The prompt and the template")
    batch = layout_ids(model.tokenizer, heads, 1, responses=slots, total_length=length)
    fixed = dataclasses.replace(options, max_new_tokens=None)  # the text ends where the template ends
    return text_steps(model, batch, images, fixed, generator, reveal_per_step=reveal_per_step,
                      never=(model.end_token_id,))
