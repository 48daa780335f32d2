"""``python -m evaluation.mme --model M --out DIR --data MME_Benchmark_release_version``: MME's per-category
accuracy, accuracy+ and score, and the perception and cognition totals; the answers also in MME's eval-tool
format (``OUT/mme_eval_tool/{category}.txt``, lines ``image<TAB>question<TAB>gt<TAB>prediction``), so its own
``calculation.py --results_dir OUT/mme_eval_tool`` gives the same numbers. ``--limit`` counts images."""

from __future__ import annotations

import argparse
from pathlib import Path

from .datasets.mme import read_mme
from .harness.files import one_line
from .harness import Item, Task, run_command
from .harness.options import add_short_answer, add_text_sampling, benchmark_parser
from .harness.predictors import answer_options, answer_predictor
from .harness.tables import number, table
from .metrics.mme import category_scores, totals


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = benchmark_parser("mme", "MME: yes/no questions in 14 categories, on a local copy of its release. "
                                     "--limit counts images (each with its questions).")
    parser.add_argument("--data", type=Path, required=True, help="MME's release folder (one folder per category)")
    add_text_sampling(parser)
    add_short_answer(parser, default=False)
    return parser


def _by_category(items: list[Item]) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.extra["category"], []).append(item)
    return groups


def score(items: list[Item], predictions: dict[str, str]) -> dict:
    """Per category acc, acc+ and score (%), and the perception and cognition totals."""
    per_category = {name: category_scores([(i.extra["image"], i.truth, predictions[i.key]) for i in group])
                    for name, group in _by_category(items).items()}
    return {"per_category": per_category, **totals(per_category)}


def report(metrics: dict) -> str:
    """A row per category, then the two totals (a total with categories missing says which)."""
    rows = [[name, number(m["acc"]), number(m["acc_plus"]), number(m["score"]), str(m["images"])]
            for name, m in metrics["per_category"].items()]
    for group in ("perception", "cognition"):
        value, missing = metrics[group], metrics[f"{group}_missing"]
        rows.append([group, "", "", number(value) if value is not None else f"n/a ({len(missing)} missing)", ""])
    return table(["category", "acc", "acc+", "score", "images"], rows)


def export(out: Path, items: list[Item], predictions: dict[str, str]) -> list[Path]:
    """MME's eval-tool files, one per category, an image's questions on consecutive lines."""
    folder = out / "mme_eval_tool"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, group in _by_category(items).items():
        lines = [f"{i.extra['image']}\t{i.prompt}\t{i.extra['answer']}\t{one_line(predictions[i.key])}\n"
                 for i in group]
        paths.append(folder / f"{name}.txt")
        paths[-1].write_text("".join(lines), encoding="utf-8")
    return paths


def build_task(args: argparse.Namespace) -> Task:
    """The run: every category's questions, answered with the model, scored the way MME's tool does."""
    return Task(name="mme", items=read_mme(args.data), predict=answer_predictor(args.steps, args.sampler,
                                                                                args.short_answer),
                options=answer_options(args), score=score, report=report, export=export, data={"data": args.data})


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what ``results.json`` holds."""
    return run_command(build_parser(), build_task, argv)


if __name__ == "__main__":
    main()
