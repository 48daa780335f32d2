"""How text is laid out for the model: a clean prompt followed by a response slot (docs/design.md §2.3).

One layout serves training (the slot holds the target, padded with EOS) and sampling (the slot
starts fully masked). Rows of a batch share one length: a row with a shorter prompt gets a longer
slot, which the model fills with EOS, exactly like the padding it was trained on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)


@dataclass
class TextBatch:
    """``input_ids`` (b, l) and ``response_mask`` (b, l): True where the model generates / is trained."""

    input_ids: torch.LongTensor
    response_mask: torch.BoolTensor


def mask_token_id(tokenizer) -> int:
    """The tokenizer's mask token: ``mask_token`` if set, else T5's ``<extra_id_0>``."""
    token = getattr(tokenizer, "mask_token", None) or "<extra_id_0>"
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError("The tokenizer has no mask token (neither `mask_token` nor `<extra_id_0>`).")
    return int(token_id)


def end_token_id(tokenizer) -> int:
    """The token that ends a response and pads its slot: EOS, else PAD."""
    token_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
    if token_id is None:
        raise ValueError("The tokenizer needs an EOS or PAD token to end and pad responses.")
    return int(token_id)


def prompt_ids(tokenizer, text: str, max_prompt_length: int) -> list[int]:
    """Token ids of a prompt with the tokenizer's trailing EOS/SEP dropped, truncated with a warning."""
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    trailing = {tokenizer.eos_token_id, getattr(tokenizer, "sep_token_id", None)} - {None}
    if ids and ids[-1] in trailing:
        ids = ids[:-1]
    if len(ids) > max_prompt_length:
        logger.warning("Prompt of %d tokens truncated to %d: %r", len(ids), max_prompt_length, text[:80])
        ids = ids[:max_prompt_length]
    return ids


def response_ids(tokenizer, text: str) -> list[int]:
    """Token ids of a training target, followed by one end token."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [end_token_id(tokenizer)]


def layout(
    tokenizer, prompts: list[str], slot_length: int, responses: list[str] | None = None,
    max_prompt_length: int = 256, total_length: int | None = None,
) -> TextBatch:
    """Lay out prompts (kept clean) and response slots.

    Args:
        prompts: conditioning text per row ("" for none).
        slot_length: minimum response slot per row.
        responses: training targets (truncated to the slot, padded with EOS); None fills the slot with masks.
        total_length: fixed row length; default longest prompt + ``slot_length``.
    """
    heads = [prompt_ids(tokenizer, p, max_prompt_length) for p in prompts]
    return layout_ids(tokenizer, heads, slot_length, responses, total_length)


def layout_ids(tokenizer, heads: list[list[int]], slot_length: int, responses: list[str | list[int]] | None = None,
               total_length: int | None = None) -> TextBatch:
    """``layout`` of prompts already tokenised (``prompt_ids``); a response may be given as its token ids (end
    token included), e.g. an in-filling template with masks at its blanks."""
    end = end_token_id(tokenizer)
    mask = mask_token_id(tokenizer)
    length = total_length or max(len(h) for h in heads) + slot_length
    if any(len(h) + slot_length > length for h in heads):
        raise ValueError(f"total_length {length} leaves less than slot_length {slot_length} for a prompt.")
    ids = torch.full((len(heads), length), end, dtype=torch.long)
    response_mask = torch.zeros((len(heads), length), dtype=torch.bool)
    for row, head in enumerate(heads):
        ids[row, : len(head)] = torch.tensor(head, dtype=torch.long)
        response_mask[row, len(head):] = True
        if responses is None:
            ids[row, len(head):] = mask
        else:
            given = responses[row]
            target = (response_ids(tokenizer, given) if isinstance(given, str) else list(given))[: length - len(head)]
            ids[row, len(head): len(head) + len(target)] = torch.tensor(target, dtype=torch.long)
    return TextBatch(input_ids=ids, response_mask=response_mask)


def decode_responses(tokenizer, batch_ids: torch.Tensor, response_mask: torch.Tensor) -> list[str]:
    """The text of each row's response slot, cut at the first EOS/PAD."""
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    texts = []
    for ids, slot in zip(batch_ids.tolist(), response_mask.tolist()):
        response = [i for i, keep in zip(ids, slot) if keep]
        cut = next((n for n, i in enumerate(response) if i in stops), len(response))
        texts.append(tokenizer.decode(response[:cut], skip_special_tokens=True).strip())
    return texts
