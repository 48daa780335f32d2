"""Shapes-World, ddit's built-in domain: scenes, renders, captions and questions, and a judge that reads
generated images back (docs/design.md §4). The benchmark is ``shapes_world.benchmark``.

Nothing here imports torch: the domain is numpy + PIL, so the app can draw example scenes cheaply.
"""

from .judge import matches, pairs_up, read_scene
from .language import caption, parse_caption, parse_prompt, prompt, spell_out_counts
from .questions import absent_pairs, exists_question, questions, sample_question
from .render import jpeg_round_trip, render
from .scene import (
    BACKGROUND, BENCHMARK_SEED, CELL_NAMES, CELL_PHRASES, COLORS, IMAGE_SIZE, MAX_OBJECTS, NUMBER_WORDS, QTYPES,
    SHAPES, SIZES, TRAIN_SEED, Scene, ShapeObject, iter_scenes, sample_scene,
)

__all__ = [
    "BACKGROUND", "BENCHMARK_SEED", "CELL_NAMES", "CELL_PHRASES", "COLORS", "IMAGE_SIZE", "MAX_OBJECTS",
    "NUMBER_WORDS", "QTYPES", "SHAPES", "SIZES", "TRAIN_SEED", "Scene", "ShapeObject", "absent_pairs", "caption",
    "exists_question", "iter_scenes", "jpeg_round_trip", "matches", "pairs_up", "parse_caption", "parse_prompt",
    "prompt", "questions", "read_scene", "render", "sample_question", "sample_scene", "spell_out_counts",
]
