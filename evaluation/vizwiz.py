"""``python -m evaluation.vizwiz --model M --out DIR --annotations val.json --images DIR``: VizWiz-VQA accuracy
(VQA accuracy over its ten answers), overall and per answer type; without answers (test) only
``submission.json`` in the challenge's format (``[{"image", "answer"}]``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .datasets.vizwiz import read_vizwiz
from .harness.files import one_line
from .harness import Task, run_command
from .harness.options import add_short_answer, add_text_sampling, benchmark_parser
from .harness.predictors import answer_options, answer_predictor
from .vqa_family import report, score_vqa, submission_writer


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = benchmark_parser("vizwiz", "VizWiz-VQA: VQA accuracy on a local copy of the data, in its format.")
    parser.add_argument("--annotations", type=Path, required=True, help="VizWiz JSON (val.json, test.json)")
    parser.add_argument("--images", type=Path, required=True, help="folder of the split's images")
    add_text_sampling(parser)
    add_short_answer(parser, default=True)
    return parser


def build_task(args: argparse.Namespace) -> Task:
    """The run: questions read, answered with the model, scored by VQA accuracy."""
    return Task(
        name="vizwiz", items=read_vizwiz(args.annotations, args.images),
        predict=answer_predictor(args.steps, args.sampler, args.short_answer), options=answer_options(args),
        score=score_vqa, report=report, data={"annotations": args.annotations, "images": args.images},
        export=submission_writer(lambda item, answer: {"image": item.extra["image"], "answer": one_line(answer)}),
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what ``results.json`` holds."""
    return run_command(build_parser(), build_task, argv)


if __name__ == "__main__":
    main()
