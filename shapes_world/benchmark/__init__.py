"""The Shapes-World benchmark, shaped like the paper's tables (docs/design.md §4.6):
``python -m shapes_world.benchmark --model PATH`` (``--help`` for the options).

- T2I prompt following in GenEval's categories, judged by ``shapes_world.judge.read_scene``;
- captioning: exact-scene match and CIDEr against the canonical caption;
- VQA: accuracy per question type;
- yes/no: POPE-style balanced probes ("is there a red circle?"), one per render, in POPE's "random" and
  "adversarial" settings (absent pairs drawn from all, or from those sharing a colour or shape in the scene);
- speed: seconds per item at batch 1 with the model's defaults;
- ``--sweep``: caption and VQA accuracy against the number of text denoising steps, per sampler;
- ``--threshold-sweep``: caption and VQA accuracy and forward passes against the confidence threshold;
- ``--t2i-sweep``: T2I accuracy against the guidance scale and the number of image steps.

Items are pure functions of the benchmark seed, and each batch has its own seeded generator.
Modules: ``items`` (what is asked), ``scoring`` (how answers are judged), ``tasks`` (one function per task),
``sweeps``, ``report`` (printed tables), ``cli`` (the command).
"""

from .items import (
    PERTURBATIONS, POPE_SETTINGS, benchmark_images, benchmark_input, benchmark_questions, t2i_prompts, yes_no_probes,
)
from .report import report, table
from .scoring import T2I_CATEGORIES, cider, words
from .sweeps import fewest_steps, sweep_t2i, sweep_text_steps, sweep_text_thresholds
from .tasks import evaluate_caption, evaluate_t2i, evaluate_vqa, evaluate_yes_no, measure_speed

__all__ = [
    "PERTURBATIONS", "POPE_SETTINGS", "T2I_CATEGORIES", "benchmark_images", "benchmark_input", "benchmark_questions",
    "cider", "evaluate_caption", "evaluate_t2i", "evaluate_vqa", "evaluate_yes_no", "fewest_steps", "measure_speed",
    "report", "sweep_t2i", "sweep_text_steps", "sweep_text_thresholds", "t2i_prompts", "table", "words",
    "yes_no_probes",
]
