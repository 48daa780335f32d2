"""``python -m evaluation.vqav2 --model M --out DIR --questions Q.json [--annotations A.json] --images DIR``:
VQAv2 accuracy (overall and per answer type) with the official answer normalisation; without annotations
(test-dev) only ``submission.json`` for the evaluation server. ``evaluation.okvqa`` is the same for OK-VQA."""

from __future__ import annotations

import argparse
from pathlib import Path

from .datasets.vqav2 import COCO_PATTERN, read_vqa
from .harness.files import one_line
from .harness import Task, run_command
from .harness.options import add_short_answer, add_text_sampling, benchmark_parser
from .harness.predictors import answer_options, answer_predictor
from .vqa_family import report, score_vqa, submission_writer


def build_parser(name: str = "vqav2", title: str = "VQAv2") -> argparse.ArgumentParser:
    """The command's options (shared with OK-VQA)."""
    parser = benchmark_parser(name, f"{title}: VQA accuracy on a local copy of the data, in its own format.")
    parser.add_argument("--questions", type=Path, required=True, help="questions JSON (OpenEnded_mscoco_*.json)")
    parser.add_argument("--annotations", type=Path, default=None,
                        help="annotations JSON (mscoco_*_annotations.json); leave out for test-dev")
    parser.add_argument("--images", type=Path, required=True, help="folder of the COCO images (e.g. val2014/)")
    parser.add_argument("--image-pattern", default=COCO_PATTERN,
                        help="image file name from {image_id} and {subtype} (the questions file's data_subtype); "
                             "default %(default)s")
    add_text_sampling(parser)
    add_short_answer(parser, default=True)
    return parser


def build_task(args: argparse.Namespace, name: str = "vqav2") -> Task:
    """The run: questions (and answers) read, answered with the model, scored by VQA accuracy."""
    items = read_vqa(args.questions, args.annotations, args.images, args.image_pattern)
    return Task(
        name=name, items=items, predict=answer_predictor(args.steps, args.sampler, args.short_answer),
        options=answer_options(args), score=score_vqa, report=report,
        data={"questions": args.questions, "annotations": args.annotations, "images": args.images,
              "image_pattern": args.image_pattern},
        export=submission_writer(lambda item, answer: {"question_id": item.extra["question_id"],
                                                       "answer": one_line(answer)}),
    )


def main(argv: list[str] | None = None, name: str = "vqav2", title: str = "VQAv2") -> dict:
    """Run the benchmark; returns what ``results.json`` holds."""
    return run_command(build_parser(name, title), lambda args: build_task(args, name), argv)


if __name__ == "__main__":
    main()
