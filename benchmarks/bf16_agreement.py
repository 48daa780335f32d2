"""bf16 against fp32 on the same model, the same inputs and the same seeds: how often the tokens are identical, and the
exact-match accuracy in each dtype (captions and answers on freshly drawn, held-out Shapes-World scenes).

    python benchmarks/bf16_agreement.py [--model ddit-shapes] [--n 100] [--seed 4242] [--batch 25] [--out f.json]

The scenes come from ``--seed`` (not the training or the benchmark seed) and are rendered as the benchmark renders
its inputs; each has one question drawn as the benchmark draws them. Both dtypes sample with the model's own
defaults, batch by batch with one generator per batch seeded ``seed + batch index``. A caption is right when it is the
scene's canonical caption (``parse_caption`` gives the scene back); an answer when its words are the answer's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # repo root: run from a clone

DTYPES = ("float32", "bfloat16")


def run_dtype(model: str, dtype: str, images: list, questions: list[str], batch: int, seed: int,
              device: str, sampler: str | None = None) -> dict:
    """Captions and answers of every image in ``dtype`` (``sampler``: the text sampler, default the model's): texts,
    the token ids of each row (prompt and slot) and the seconds each task took."""
    import torch

    from ddit import DualDiffusionPipeline
    from ddit.dtypes import parse_dtype

    pipe = DualDiffusionPipeline.from_pretrained(model, torch_dtype=parse_dtype(dtype), device=device)
    pipe.set_progress_bar_config(disable=True)
    out: dict = {"dtype": str(pipe.transformer.dtype)}
    for task in ("caption", "answer"):
        texts, tokens, began = [], [], time.perf_counter()
        for index, start in enumerate(range(0, len(images), batch)):
            generator = torch.Generator().manual_seed(seed + index)
            chunk = images[start:start + batch]
            result = pipe.caption(chunk, generator=generator, sampler=sampler) if task == "caption" else \
                pipe.answer(chunk, questions[start:start + batch], generator=generator, sampler=sampler)
            texts += result.text
            tokens += [row.tolist() for row in result.token_ids]
        out[task] = {"texts": texts, "tokens": tokens, "seconds": round(time.perf_counter() - began, 1)}
    return out


def compare(runs: dict[str, dict], scenes: list, answers: list[str]) -> dict:
    """Per task: items with identical tokens in both dtypes, and the exact-match accuracy of each dtype."""
    from shapes_world.benchmark.scoring import is_caption_of, words

    right = {"caption": lambda text, i: is_caption_of(text, scenes[i]),
             "answer": lambda text, i: words(text) == answers[i]}
    n = len(scenes)
    out = {}
    for task, is_right in right.items():
        a, b = (runs[d][task] for d in DTYPES)
        same_tokens = sum(x == y for x, y in zip(a["tokens"], b["tokens"]))
        same_text = sum(x == y for x, y in zip(a["texts"], b["texts"]))
        out[task] = {"n": n, "identical_tokens": same_tokens, "identical_text": same_text,
                     **{f"exact_{d}": sum(is_right(t, i) for i, t in enumerate(runs[d][task]["texts"])) / n
                        for d in DTYPES},
                     **{f"seconds_{d}": runs[d][task]["seconds"] for d in DTYPES},
                     "differing": [{"item": i, "float32": x, "bfloat16": y}
                                   for i, (x, y) in enumerate(zip(a["texts"], b["texts"])) if x != y][:10]}
    return out


def markdown(report: dict) -> str:
    """The comparison as a Markdown table."""
    lines = [f"Model {report['model']}, {report['n']} held-out scenes (seed {report['seed']}), batches of "
             f"{report['batch']}, the model's default sampling settings"
             + (f" but the {report['sampler']} sampler" if report.get("sampler") else "")
             + f", {report['threads']} torch threads ({' vs '.join(report['dtypes'].values())}).", "",
             "| task | identical tokens | identical text | exact fp32 | exact bf16 | seconds fp32 | seconds bf16 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for task, r in report["tasks"].items():
        lines.append(f"| {task} | {r['identical_tokens']} / {r['n']} | {r['identical_text']} / {r['n']} | "
                     f"{100 * r['exact_float32']:.1f} % | {100 * r['exact_bfloat16']:.1f} % | "
                     f"{r['seconds_float32']} | {r['seconds_bfloat16']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run both dtypes, compare, print the table and write the JSON; returns the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ddit-shapes", help="a Shapes-World pipeline folder (default: bundled)")
    parser.add_argument("--n", type=int, default=100, help="scenes (default 100)")
    parser.add_argument("--seed", type=int, default=4242, help="scenes and sampling (held-out: not the training "
                                                              "or the benchmark seed)")
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--sampler", choices=("ancestral", "confidence"), default=None,
                        help="text sampler for both tasks (default: the model's own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="JSON report path")
    args = parser.parse_args(argv)
    if args.n < 1 or args.batch < 1:
        parser.error("--n and --batch must be at least 1")
    import torch

    import shapes_world as sw
    from shapes_world.benchmark.items import benchmark_images, benchmark_questions

    if args.seed in (sw.TRAIN_SEED, sw.BENCHMARK_SEED):
        parser.error(f"--seed {args.seed} is the training or the benchmark seed; pick a held-out one")
    scenes, images = benchmark_images(args.n, args.seed)
    questions, answers, _ = zip(*benchmark_questions(scenes, args.seed))
    runs = {d: run_dtype(args.model, d, images, list(questions), args.batch, args.seed, args.device, args.sampler)
            for d in DTYPES}
    report = {"model": args.model, "n": args.n, "seed": args.seed, "batch": args.batch, "sampler": args.sampler,
              "dtypes": {d: runs[d]["dtype"] for d in DTYPES},
              "threads": torch.get_num_threads(), "tasks": compare(runs, scenes, list(answers))}
    report["markdown"] = markdown(report)
    print(report["markdown"])
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {' '.join(str(err).split())}") from None
