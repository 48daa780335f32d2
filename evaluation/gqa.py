"""``python -m evaluation.gqa --model M --out DIR --questions testdev_balanced_questions.json --images DIR``:
GQA exact-match accuracy (after the VQA answer normalisation), overall and per structural type; predictions
also in GQA's own results format (``submission.json``: ``[{"questionId", "prediction"}]``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .datasets.gqa import GQA_PATTERN, read_gqa
from .harness.files import one_line
from .harness import Task, run_command
from .harness.options import add_short_answer, add_text_sampling, benchmark_parser
from .harness.predictors import answer_options, answer_predictor
from .vqa_family import report, score_exact, submission_writer


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = benchmark_parser("gqa", "GQA: exact-match accuracy on a local copy of the data, in its own format.")
    parser.add_argument("--questions", type=Path, required=True, help="questions JSON (e.g. testdev_balanced)")
    parser.add_argument("--images", type=Path, required=True, help="folder of the GQA images")
    parser.add_argument("--image-pattern", default=GQA_PATTERN,
                        help="image file name from {image_id} (the imageId field); default %(default)s")
    add_text_sampling(parser)
    add_short_answer(parser, default=True)
    return parser


def build_task(args: argparse.Namespace) -> Task:
    """The run: questions read, answered with the model, scored by exact match."""
    return Task(
        name="gqa", items=read_gqa(args.questions, args.images, args.image_pattern),
        predict=answer_predictor(args.steps, args.sampler, args.short_answer), options=answer_options(args),
        score=score_exact, report=report,
        data={"questions": args.questions, "images": args.images, "image_pattern": args.image_pattern},
        export=submission_writer(lambda item, answer: {"questionId": item.extra["question_id"],
                                                       "prediction": one_line(answer)}),
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what ``results.json`` holds."""
    return run_command(build_parser(), build_task, argv)


if __name__ == "__main__":
    main()
