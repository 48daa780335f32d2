"""Reuse across text steps (``text_cache_impl.py``): speed and accuracy of each cache on the bundled model (CPU).

Run:  python benchmarks/text_cache.py                              (captions, n=200, 8 and 16 steps)
      python benchmarks/text_cache.py --task answer --steps 4 8    (VQA with more than its 1 default step)

The loop here mirrors ``ddit.text_sampling.text_steps`` for the paper's fixed loop (no threshold, blocks or
early stop; ``reuse_predictions`` on) with the model's task defaults, and calls ``TextStepCache.logits`` for
each forward pass; with every interval 1 ("exact") its text is asserted equal to ``pipe.caption`` /
``pipe.answer``. Settings: ``image/k`` refreshes the image stream's K/V every k passes (text stream alone
between), ``encoder/k`` runs the whole text encoder every k passes (changed tokens only between), ``both/k``
both. Timing: whole captions (image encoding, loop, decoding), every setting interleaved group by group, after
one warm-up group; s/item is the median, the ratio the median of paired (same group) exact / setting times;
batch 1 and ``--batch``; ``--timing-only`` skips the accuracy runs. Accuracy: the Shapes-World benchmark items in seeded batches
of ``--batch``, scored like ``shapes_world.benchmark.tasks``. A cache is kept if >= 1.5x faster at <= 1 point.

Glossary: b - batch, l - text tokens, d - width.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: ddit is not pip-installed
from benchmarks.forward import time_interleaved  # noqa: E402
from benchmarks.text_cache_impl import (CacheIntervals, EncoderCache, ImageStreamCache,  # noqa: E402
                                        TextStepCache, text_head)
from ddit import DualDiffusionPipeline  # noqa: E402
from ddit.masked_diffusion import subs_log_probs  # noqa: E402
from ddit.text_layout import TextBatch, decode_responses, layout  # noqa: E402
from ddit.text_scheduler import MaskedDiffusionScheduler  # noqa: E402
from shapes_world.benchmark.items import benchmark_images, benchmark_questions  # noqa: E402
from shapes_world.benchmark.scoring import is_caption_of, words  # noqa: E402
from shapes_world.scene import BENCHMARK_SEED  # noqa: E402

SPEEDUP, MAX_DROP = 1.5, 1.0  # the bar: keep a cache only if >= 1.5x faster at <= 1 point lost


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="assets/ddit-shapes")
    p.add_argument("--task", choices=("caption", "answer"), default="caption")
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16])
    p.add_argument("--intervals", type=int, nargs="+", default=[2, 4, 8], help="refresh intervals besides 1")
    p.add_argument("--n", type=int, default=200, help="benchmark items scored per setting")
    p.add_argument("--batch", type=int, default=32, help="the large batch (accuracy and timing)")
    p.add_argument("--timing-groups", type=int, nargs=2, default=[20, 5], metavar=("B1", "BIG"),
                   help="timed groups per setting at batch 1 and at --batch (after one warm-up group)")
    p.add_argument("--seed", type=int, default=BENCHMARK_SEED)
    p.add_argument("--timing-only", action="store_true", help="skip the accuracy runs (and the verdict)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (other workers use the rest)")
    return p.parse_args()


def settings(intervals: list[int]) -> dict[str, CacheIntervals]:
    out = {"exact": CacheIntervals()}
    for kind in ("image", "encoder", "both"):
        for k in intervals:
            out[f"{kind}/{k}"] = CacheIntervals(image=k if kind != "encoder" else 1, encoder=k if kind != "image" else 1)
    return out


# ---------------------------------------------------------------------------------------------- the loop
def text_batch(pipe, task: str, prompts: list[str]) -> tuple[TextBatch, str]:
    """The layout and sampler ``pipe.iter_caption`` / ``pipe.iter_answer`` use with the model's defaults."""
    d = pipe.defaults
    if task == "caption":
        return layout(pipe.tokenizer, prompts, d.caption_length, max_prompt_length=d.max_prompt_length), d.caption_sampler
    total = d.answer_total_length
    longest = d.max_prompt_length if total is None else min(d.max_prompt_length, total - 1)
    batch = layout(pipe.tokenizer, prompts, 1 if total else d.answer_length, max_prompt_length=longest,
                   total_length=total)
    return batch, d.answer_sampler


def prompts_of(pipe, task: str, questions: list[str]) -> list[str]:
    d = pipe.defaults
    if task == "caption":
        return [d.caption_prompt] * len(questions)
    return [d.question_template.format(question=q.strip()) for q in questions]


def loop(pipe, cache: TextStepCache, x: torch.Tensor, steps: int, sampler: str, generator) -> Iterator[torch.Tensor]:
    """``text_steps``'s fixed loop: yields the tokens (b, l) before each step, then the final ones."""
    scheduler = MaskedDiffusionScheduler(sampler=sampler)
    scheduler.set_timesteps(steps)
    mask_id, changed, log_probs = pipe.mask_token_id, True, None
    for i in range(steps):
        yield x
        if changed:  # reuse_predictions: nothing revealed, so p(x0 | x_t) is unchanged
            log_probs = subs_log_probs(cache.logits(x), x, mask_id)
        out = scheduler.step(log_probs, i, x, mask_id, generator)
        x, changed = torch.where(out.revealed, out.prev_sample, x), bool(out.revealed.any())
    yield x


@torch.no_grad()
def sample(pipe, task: str, images: list, questions: list[str], steps: int, intervals: CacheIntervals,
           generator: torch.Generator | None = None) -> list[str]:
    """Texts for ``images`` (one question each for VQA; ignored for captions) with the cache ``intervals``."""
    batch, sampler = text_batch(pipe, task, prompts_of(pipe, task, questions))
    latents = pipe.encode_image(images).expand(len(images), -1, -1, -1)
    x = batch.input_ids.to(pipe._execution_device)
    *_, x = loop(pipe, TextStepCache(pipe, latents, intervals), x, steps, sampler, generator)
    return decode_responses(pipe.tokenizer, x.cpu(), batch.response_mask)


def check_exact_is_pipeline(pipe, task: str, items, steps: int, seed: int) -> None:
    """With every interval 1 the loop gives the pipeline's own texts (first batch of items, seeded alike)."""
    images, questions, _ = items
    mine = sample(pipe, task, images, questions, steps, CacheIntervals(), torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    theirs = (pipe.caption(images, num_inference_steps=steps, generator=g) if task == "caption"
              else pipe.answer(images, questions, num_inference_steps=steps, generator=g)).text
    assert mine == theirs, "the benchmark loop with the cache off differs from the pipeline"


# ---------------------------------------------------------------------------------------------- measurements
def benchmark_items(task: str, n: int, seed: int) -> tuple[list, list[str], list[Callable[[str], bool]]]:
    """Images, questions ("" for captions) and a scorer per item, as ``shapes_world.benchmark.tasks`` does."""
    scenes, images = benchmark_images(n, seed)
    if task == "caption":
        return images, [""] * n, [lambda t, s=s: is_caption_of(t, s) for s in scenes]
    questions, answers, _ = zip(*benchmark_questions(scenes, seed))
    return images, list(questions), [lambda t, a=a: words(t) == a for a in answers]


def accuracy(pipe, task: str, items, steps: int, intervals: CacheIntervals, batch: int,
             seed: int) -> tuple[float, list[str]]:
    """Share correct in % and the texts, in batches of ``batch``, one generator per batch (``seed + index``)."""
    images, questions, scorers = items
    texts = []
    for index, start in enumerate(range(0, len(images), batch)):
        texts += sample(pipe, task, images[start:start + batch], questions[start:start + batch], steps, intervals,
                        torch.Generator().manual_seed(seed + index))
    return 100.0 * sum(score(t) for score, t in zip(scorers, texts)) / len(texts), texts


def time_settings(pipe, task: str, items, steps: int, cases: dict[str, CacheIntervals], batch: int,
                  groups: int) -> dict[str, tuple[float, float]]:
    """Per setting: median seconds per item, and the median over groups of exact's time / its time (paired, so
    that load from other processes, which drifts, hits both sides of each ratio alike). Every setting runs once
    per group, interleaved; group 0 is a warm-up."""
    images, questions, _ = items
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for g in range(groups + 1):
        chunk = slice((g * batch) % len(images), (g * batch) % len(images) + batch)
        for name, intervals in cases.items():
            start = time.perf_counter()
            sample(pipe, task, images[chunk], questions[chunk], steps, intervals, torch.Generator().manual_seed(g))
            if g:
                samples[name].append((time.perf_counter() - start) / len(images[chunk]))
    return {name: (statistics.median(s), statistics.median(e / t for e, t in zip(samples["exact"], s)))
            for name, s in samples.items()}


def median_ms(fns: dict[str, Callable[[], object]], repeats: int = 15) -> dict[str, float]:
    """Median milliseconds per call, the candidates interleaved (one warm-up call each)."""
    return {name: 1e3 * secs for name, secs in time_interleaved(fns, repeats, warmup=1).items()}


@torch.no_grad()
def trajectory(pipe, task: str, images: list, questions: list[str], steps: int):
    """Latents and the exact loop's tokens before each step and after the last: a list of (b, l)."""
    batch, sampler = text_batch(pipe, task, prompts_of(pipe, task, questions))
    latents = pipe.encode_image(images).expand(len(images), -1, -1, -1)
    xs = list(loop(pipe, TextStepCache(pipe, latents), batch.input_ids, steps, sampler, None))
    return latents, xs


@torch.no_grad()
def cost_split(pipe, task: str, items, steps: int, batch: int) -> dict[str, float]:
    """Milliseconds of each part of one forward pass at mid-sampling (step steps // 2), batch ``batch``."""
    images, questions, _ = items
    latents, xs = trajectory(pipe, task, images[:batch], questions[:batch], steps)
    i, mask_id = steps // 2, pipe.mask_token_id
    before, x = xs[max(i - 1, 0)], xs[i]
    states, t, zero = pipe.encode_tokens(x), pipe.transformer, torch.zeros(x.shape[0])
    image_cache, encoder_cache = ImageStreamCache(t), EncoderCache(pipe.text_encoder)
    logits = image_cache.refresh(latents, states, mask_id)
    encoder_cache.refresh(before)
    context, temb = torch.randn(x.shape[0], x.shape[1], t.inner_dim), t.time_text_embed(zero, states.dtype)
    image_stream = t.pos_embed(latents)  # (b, n, d): stands in for the last block's image output
    scheduler = MaskedDiffusionScheduler(sampler=text_batch(pipe, task, [""])[1])
    scheduler.set_timesteps(steps)

    def encoder_update():
        encoder_cache.ids = before  # recompute the tokens that step i - 1 revealed
        encoder_cache.update(x)

    return median_ms({
        "encode image (once per text)": lambda: pipe.encode_image(images[:batch]),
        "text encoder": lambda: pipe.encode_tokens(x),
        "text encoder, changed tokens": encoder_update,
        "transformer (full forward)": lambda: t(latents, states, zero, mask_token_id=mask_id),
        "transformer, text stream alone": lambda: image_cache.text_only(states, mask_id),
        "  of which the text head": lambda: text_head(t, context, mask_id),
        "  image head (unused in text tasks)": lambda: t.image_proj_out(t.image_norm_out(image_stream, temb)),
        "subs + scheduler step": lambda: scheduler.step(subs_log_probs(logits, x, mask_id), i, x, mask_id),
    })


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@torch.no_grad()
def drift(pipe, task: str, items, steps: int, batch: int) -> tuple[float, list[float]]:
    """How much what the caches keep moves in one step of the exact loop, averaged over steps: the encoder
    states of tokens that did not change, and each block's image keys (relative L2 change)."""
    images, questions, _ = items
    latents, xs = trajectory(pipe, task, images[:batch], questions[:batch], steps)
    encoder, image_keys = [], []
    for before, after in zip(xs[:-1], xs[1:]):
        same = before == after
        if same.all():
            continue
        a, b = pipe.encode_tokens(after), pipe.encode_tokens(before)
        encoder.append(_relative(a[same], b[same]))
        caches = [ImageStreamCache(pipe.transformer) for _ in range(2)]
        for cache, states in zip(caches, (a, b)):
            cache.refresh(latents, states, pipe.mask_token_id)
        image_keys.append([_relative(k1, k0) for k1, k0 in zip(caches[0].keys, caches[1].keys)])
    per_block = [statistics.mean(col) for col in zip(*image_keys)] if image_keys else []
    return (statistics.mean(encoder) if encoder else 0.0), per_block


# ---------------------------------------------------------------------------------------------- report
def report_steps(pipe, args, items, steps: int) -> list[tuple]:
    """Check, time and score every setting at ``steps``; print the table (``ratio``: paired speed-up over exact;
    ``differ``: texts unlike the exact setting's, of n); return its rows."""
    cases = settings([k for k in args.intervals if k <= steps])
    check_exact_is_pipeline(pipe, args.task, tuple(c[:args.batch] for c in items), steps, args.seed)
    print(f"\n## {args.task}, {steps} steps: the loop with every interval 1 gives pipe.{args.task}'s texts (asserted)")
    b1 = time_settings(pipe, args.task, items, steps, cases, 1, args.timing_groups[0])
    big = time_settings(pipe, args.task, items, steps, cases, args.batch, args.timing_groups[1])
    runs = {name: accuracy(pipe, args.task, items, steps, c, args.batch, args.seed)
            for name, c in cases.items() if not args.timing_only}
    print(f"{'setting':<12}{'b1 s/item':>11}{'ratio':>7}{f'b{args.batch} s/item':>13}{'ratio':>7}"
          f"{'exact %' if args.task == 'caption' else 'acc %':>9}{'Δ pts':>7}{'differ':>8}  kept")
    rows = []
    for name in cases:
        (t1, r1), (tb, rb) = b1[name], big[name]
        line = f"{name:<12}{t1:>11.4f}{r1:>7.2f}{tb:>13.4f}{rb:>7.2f}"
        if not runs:
            print(line)
            continue
        score, texts = runs[name]
        drop, differ = runs["exact"][0] - score, sum(a != b for a, b in zip(texts, runs["exact"][1]))
        kept = name != "exact" and min(r1, rb) >= SPEEDUP and drop <= MAX_DROP
        rows.append((steps, name, r1, rb, drop, kept))
        print(f"{line}{score:>9.1f}{0.0 - drop:>+7.1f}{differ:>8}  {'yes' if kept else 'no'}")
    return rows


def report_costs(pipe, args, items) -> None:
    steps = next((s for s in args.steps if s > 1), args.steps[0])  # a step after the first: something changed
    for batch in (1, args.batch):
        costs = cost_split(pipe, args.task, items, steps, batch)
        full = costs["text encoder"] + costs["transformer (full forward)"] + costs["subs + scheduler step"]
        print(f"\n## forward-pass cost split, batch {batch}, at step {steps // 2} of {steps} (ms, median; "
              f"share of one exact step = encoder + transformer + scheduler = {full:.2f} ms)")
        for name, ms in costs.items():
            share = f"{100 * ms / full:5.1f} %" if "once" not in name else "     -"
            print(f"  {name:<38}{ms:>9.3f}  {share}")
    enc, blocks = drift(pipe, args.task, items, steps, args.batch)
    print(f"\n## drift per step ({steps} steps, batch {args.batch}, relative L2, mean over steps)")
    print(f"  encoder states of unchanged tokens: {enc:.4f}")
    print("  image keys per block: " + " ".join(f"{v:.4f}" for v in blocks) + " (block 0 is exact by design)")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: cpu_count={os.cpu_count()} torch_threads={torch.get_num_threads()} torch={torch.__version__}")
    pipe = DualDiffusionPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    d = pipe.defaults
    length = d.caption_length if args.task == "caption" else d.answer_length
    print(f"model: {args.model}; {args.task}: slot {length}, sampler "
          f"{d.caption_sampler if args.task == 'caption' else d.answer_sampler}; n={args.n}, seed={args.seed}")
    items = benchmark_items(args.task, args.n, args.seed)
    report_costs(pipe, args, items)
    rows = [row for steps in args.steps for row in report_steps(pipe, args, items, steps)]
    if args.timing_only:
        return
    kept = [f"{name} at {steps} steps" for steps, name, *_, ok in rows if ok]
    print(f"\nverdict (>= {SPEEDUP}x at batch 1 and {args.batch}, <= {MAX_DROP} point lost): "
          + (", ".join(kept) + " qualify" if kept else "no cache qualifies"))
    for column, batch in ((2, 1), (3, args.batch)):
        alone = [f"{row[1]} at {row[0]} steps ({row[column]:.2f}x, {0.0 - row[4]:+.1f})" for row in rows
                 if row[1] != "exact" and not row[5] and row[column] >= SPEEDUP and row[4] <= MAX_DROP]
        print(f"  qualifying at batch {batch} alone: {', '.join(alone) or 'none'}")


if __name__ == "__main__":
    main()
