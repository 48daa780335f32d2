"""A word-level tokenizer for small closed vocabularies (the Shapes-World model uses one).

Built with the ``tokenizers`` library and wrapped as a transformers ``PreTrainedTokenizerFast``, so it
saves and loads with ``save_pretrained``/``from_pretrained`` exactly like a real checkpoint's tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"eos_token": "[EOS]", "unk_token": "[UNK]", "mask_token": "[MASK]"}


def build_word_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """Tokenizer over ``words`` (lower-cased; punctuation is its own token) with EOS (= PAD), UNK and MASK.

    No special tokens are added around a text; decoding joins words with spaces and drops the space
    before punctuation.
    """
    specials = list(SPECIAL_TOKENS.values())
    vocab = {token: i for i, token in enumerate(specials)}
    for word in sorted({w.lower() for w in words} - set(vocab)):
        vocab[word] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()  # words and punctuation runs
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # "circle ?" -> "circle?"
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=SPECIAL_TOKENS["eos_token"], model_max_length=512, **SPECIAL_TOKENS
    )
