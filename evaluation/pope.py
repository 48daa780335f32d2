"""``python -m evaluation.pope --model M --out DIR --questions coco_pope_random.jsonl [...] --images DIR``:
POPE accuracy, precision, recall, F1 and yes-ratio per question file (random, popular, adversarial) and their
mean; an answer counts as yes or no when it starts with that word."""

from __future__ import annotations

import argparse
from pathlib import Path

from .datasets.pope import read_pope
from .harness import Item, Task, run_command
from .harness.options import add_short_answer, add_text_sampling, benchmark_parser
from .harness.predictors import answer_options, answer_predictor
from .harness.tables import number, table
from .metrics.yes_no import pope_answer, pope_metrics

COLUMNS = ("accuracy", "precision", "recall", "f1", "yes_ratio")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = benchmark_parser("pope", "POPE: object hallucination by yes/no questions, on local copies of its files.")
    parser.add_argument("--questions", type=Path, nargs="+", required=True,
                        help="POPE question files (JSONL), e.g. coco_pope_random/popular/adversarial.jsonl")
    parser.add_argument("--images", type=Path, required=True, help="folder of the COCO images (val2014/)")
    add_text_sampling(parser)
    add_short_answer(parser, default=False)
    return parser


def score(items: list[Item], predictions: dict[str, str]) -> dict:
    """POPE metrics (%) per question file, and their mean over the files."""
    files: dict[str, list[Item]] = {}
    for item in items:
        files.setdefault(item.extra["file"], []).append(item)
    per_file = {name: pope_metrics([i.truth for i in group], [pope_answer(predictions[i.key]) for i in group])
                for name, group in files.items()}
    mean = {c: sum(m[c] for m in per_file.values()) / len(per_file) for c in COLUMNS}
    return {"per_file": per_file, "mean": mean}


def report(metrics: dict) -> str:
    """One row per question file, then their mean (%); "other": answers that start with neither yes nor no."""
    rows = [[name] + [number(m[c]) for c in COLUMNS] + [str(m["n"]), str(m["other"])]
            for name, m in metrics["per_file"].items()]
    if len(rows) > 1:
        rows.append(["mean"] + [number(metrics["mean"][c]) for c in COLUMNS] + ["", ""])
    return table(["", "accuracy", "precision", "recall", "F1", "yes ratio", "n", "other"], rows)


def build_task(args: argparse.Namespace) -> Task:
    """The run: questions read, answered with the model, scored by POPE's metrics."""
    return Task(name="pope", items=read_pope(args.questions, args.images),
                predict=answer_predictor(args.steps, args.sampler, args.short_answer), options=answer_options(args),
                score=score, report=report, data={"questions": args.questions, "images": args.images})


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what ``results.json`` holds."""
    return run_command(build_parser(), build_task, argv)


if __name__ == "__main__":
    main()
