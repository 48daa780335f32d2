"""Every word Shapes-World's captions, prompts, questions and answers use: the bundled tokenizer's vocabulary."""

from __future__ import annotations

import numpy as np
from tokenizers import pre_tokenizers

from .language import caption, prompt
from .questions import questions
from .scene import CELL_NAMES, CELL_PHRASES, COLORS, NUMBER_WORDS, SHAPES, iter_scenes


def vocabulary() -> list[str]:
    """Sorted, deterministic word list, split the way ``ddit.word_tokenizer`` splits (words and punctuation)."""
    rng = np.random.default_rng(0)
    texts = [" ".join(CELL_PHRASES), " ".join(CELL_NAMES), " ".join(NUMBER_WORDS), "an"]
    texts += [f"a large small {color} {shape}" for color in COLORS for shape in SHAPES]
    for scene in iter_scenes(0, 3000):
        texts.append(caption(scene))
        texts.extend(q + " " + a for q, a, _ in questions(scene))
        texts.append(prompt(scene, rng))
    split = pre_tokenizers.Whitespace()
    return sorted({w for text in texts for w, _ in split.pre_tokenize_str(text.lower())})
