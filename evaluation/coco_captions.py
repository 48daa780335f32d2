"""``python -m evaluation.coco_captions --model M --out DIR --karpathy dataset_coco.json --images DIR``:
COCO captioning on the Karpathy test (or val) split: CIDEr and BLEU with pycocoevalcap's scorers on simply
tokenised text, METEOR and SPICE when Java is there; captions also in COCO's results format
(``captions_results.json``: ``[{"image_id", "caption"}]``). Scores are printed x100, as papers quote them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .datasets.coco import read_karpathy
from .harness.files import one_line
from .harness import Item, Task, run_command
from .harness.options import add_text_sampling, benchmark_parser
from .harness.predictors import caption_predictor
from .harness.tables import table
from .metrics.captions import caption_scores

SHOWN = ("BLEU-4", "CIDEr", "METEOR", "SPICE")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = benchmark_parser("coco_captions", "COCO captions (Karpathy split) on a local copy of the data.")
    parser.add_argument("--karpathy", type=Path, required=True, help="Karpathy split file (dataset_coco.json)")
    parser.add_argument("--images", type=Path, required=True,
                        help="COCO image root (holding val2014/, as the split's filepath fields say)")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="Karpathy split (default test)")
    parser.add_argument("--prompt", default=None, help="caption instruction (default: the model's)")
    parser.add_argument("--no-java-metrics", dest="java_metrics", action="store_false",
                        help="skip METEOR and SPICE even when Java is there")
    add_text_sampling(parser)
    return parser


def scorer(java: bool):
    """The score function: the caption metrics, x100 (strings for metrics that did not run)."""

    def score(items: list[Item], predictions: dict[str, str]) -> dict:
        raw = caption_scores({i.key: i.truth for i in items}, {i.key: predictions[i.key] for i in items}, java)
        return {name: 100 * v if isinstance(v, float) else v for name, v in raw.items()}

    return score


def report(metrics: dict) -> str:
    """BLEU-4, CIDEr, METEOR, SPICE (x100), or why one did not run."""
    return table(["metric", "score (x100)"],
                 [[m, f"{metrics[m]:.2f}" if isinstance(metrics[m], float) else metrics[m]] for m in SHOWN])


def export(out: Path, items: list[Item], predictions: dict[str, str]) -> list[Path]:
    """The captions in COCO's results format."""
    path = out / "captions_results.json"
    path.write_text(json.dumps([{"image_id": i.extra["image_id"], "caption": one_line(predictions[i.key])}
                                for i in items], ensure_ascii=False))
    return [path]


def build_task(args: argparse.Namespace) -> Task:
    """The run: the split's images captioned by the model and scored against their references."""
    return Task(name="coco_captions", items=read_karpathy(args.karpathy, args.images, args.split),
                predict=caption_predictor(args.steps, args.sampler, args.prompt),
                options={"steps": args.steps, "sampler": args.sampler, "prompt": args.prompt, "split": args.split},
                score=scorer(args.java_metrics), report=report, export=export,
                data={"karpathy": args.karpathy, "images": args.images})


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what ``results.json`` holds."""
    return run_command(build_parser(), build_task, argv)


if __name__ == "__main__":
    main()
