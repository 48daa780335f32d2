"""App benchmark: time-to-ready, per-step latency of each tab with and without the live preview, peak RSS.

Run:  OMP_NUM_THREADS=1 python benchmarks/app.py                 (the bundled assets/ddit-shapes)
      python -m ddit save-tiny /tmp/tinyapp && python benchmarks/app.py --model /tmp/tinyapp --runs 2

Time-to-ready: from starting ``python app.py --model M --port P`` until ``GET /`` answers 200.
client_ms: each tab called ``--runs`` times through ``gradio_client`` with the model's default steps;
mean gap between consecutive streamed step updates (final summary update left out); med_ms: their
median, which gradio_client's 50 ms message polling quantizes (faster steps arrive in bursts); after
one untimed warm-up request per tab. bare_ms: the step iterators alone in this process, once the app
is stopped (no decode, no token formatting; median per step after one warm-up run). preview_ms: what
the app does per step, ``decode_preview(pred_clean)`` for images (the model's preview decoder, else the
VAE), ``app_text.token_view`` for text, on the last run's states (target <= 20 % of a step); vae_ms: the full
VAE's ``decode_latents(pred_clean)`` beside it (what image previews cost before the preview decoder).
Peak RSS (target <= 1.5 GB): app plus children, every 50 ms in requests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import suppress
from pathlib import Path
from typing import Callable, Iterator

import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # repo root: ddit and app are not pip-installed
import app_inputs  # noqa: E402
import app_text  # noqa: E402
from ddit import DualDiffusionPipeline  # noqa: E402
from ddit.cli import DEFAULT_MODEL  # noqa: E402
sys.path.insert(0, str(ROOT / "tests"))  # the tests' helpers: a free port
from helpers import free_port  # noqa: E402


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early (with the app's log) if the app exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"app exited with code {proc.returncode} before it was ready:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"app not ready after {timeout:.0f} s (log: {log})")


class RssSampler(threading.Thread):
    """Peak resident memory (bytes) of a process and its children, sampled every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.05):
        super().__init__(daemon=True)
        self.proc, self.period, self.peak, self.stop = psutil.Process(pid), period, 0, threading.Event()

    def rss(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with suppress(psutil.Error):  # a child that just exited
                total += p.memory_info().rss
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.rss())
            self.stop.wait(self.period)


def step_gaps(job, steps: int) -> list[float]:
    """Seconds between consecutive streamed step updates of one job (the final summary update left out; none for
    a one-step run). ``steps`` is the most a run may take: a threshold or an early stop can end it sooner."""
    stamps = [time.perf_counter() for _ in job][:-1]  # the step updates
    if not 1 <= len(stamps) <= steps:
        raise SystemExit(f"need 1 to {steps} step updates + 1 final, got {len(stamps) + 1} updates")
    return [b - a for a, b in zip(stamps, stamps[1:])]


def time_iterator(make: Callable[[], Iterator], runs: int) -> tuple[float, list]:
    """Median seconds per ``next()`` over ``runs`` runs (after one warm-up run); the last run's states."""
    list(make())
    secs, states = [], []
    for _ in range(runs):
        states, start = [], time.perf_counter()
        for state in make():  # make() validates; each next() runs one step
            secs.append(time.perf_counter() - start)
            states.append(state)
            start = time.perf_counter()
    return statistics.median(secs), states


def time_each(fn: Callable, states: list, repeats: int = 3) -> float:
    """Median seconds of ``fn(state)`` over all states, ``repeats`` times each."""
    secs = []
    for state in states * repeats:
        start = time.perf_counter()
        fn(state)
        secs.append(time.perf_counter() - start)
    return statistics.median(secs)


def measure_app(args: argparse.Namespace, d) -> tuple[float, float, dict[str, tuple]]:
    """Start the app; (time-to-ready s, peak RSS MB, {tab: (steps, mean ms, median ms)}); always stop it."""
    from gradio_client import Client, handle_file

    port, log = free_port(), Path(tempfile.mkdtemp(prefix="ddit-bench-")) / "app.log"
    device = ["--device", args.device] if args.device else []
    device += ["--preview-decoder", args.preview_decoder] if args.preview_decoder else []
    start = time.perf_counter()
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the app
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--model", args.model, "--port", str(port),
                                 *device], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    sampler = RssSampler(proc.pid)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc, log, args.ready_timeout)
        ready_s = time.perf_counter() - start
        sampler.start()  # from the first request on
        client, img = Client(f"http://127.0.0.1:{port}/", verbose=False), handle_file(args.image)
        requests = {
            "generate": (d.image_steps, lambda: client.submit(args.prompt, "", d.image_steps, d.guidance_scale, 0,
                                                              False, api_name="/generate")),
            "caption": (d.caption_steps, lambda: client.submit(img, d.caption_steps, d.caption_length,
                                                               d.caption_sampler, 0, 0, api_name="/caption")),
            "ask": (d.answer_steps, lambda: client.submit(img, args.question, [], d.answer_steps, d.answer_sampler,
                                                          0, 0, api_name="/ask")),
        }
        client_ms = {}
        for name, (steps, submit) in requests.items():
            list(submit())  # warm-up request, untimed (RSS still sampled)
            gaps = [g for _ in range(args.runs) for g in step_gaps(submit(), steps)]
            client_ms[name] = (steps, *(f(gaps) * 1e3 if gaps else float("nan")  # nan: one step, no gaps
                                        for f in (statistics.mean, statistics.median)))
        return ready_s, max(sampler.peak, sampler.rss()) / 2**20, client_ms
    finally:
        sampler.stop.set()
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        proc.kill()  # no-op once it has exited
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="pipeline folder (default: the bundled model)")
    p.add_argument("--image", default=str(app_inputs.EXAMPLES_DIR / "scene_0.png"), help="image for caption and ask")
    p.add_argument("--prompt", default="a large red circle at the top left")
    p.add_argument("--question", default="what color is the circle?")
    p.add_argument("--runs", type=int, default=3, help="requests per tab, and timed iterator runs")
    p.add_argument("--device", default=None, help="passed to the app and to from_pretrained (default: theirs)")
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--preview-decoder", default=None, help="passed to the app and to from_pretrained")
    args = p.parse_args()
    pipe = DualDiffusionPipeline.from_pretrained(args.model, device=args.device, preview_decoder=args.preview_decoder)
    d = pipe.defaults
    print(f"machine: cpu_count={os.cpu_count()} torch_threads={torch.get_num_threads()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')} torch={torch.__version__}")
    print(f"model: {args.model}")
    print(f"settings: runs={args.runs} image={Path(args.image).name} gen_steps={d.image_steps} "
          f"guidance={d.guidance_scale} cap_steps={d.caption_steps} cap_len={d.caption_length} "
          f"cap_sampler={d.caption_sampler} ask_steps={d.answer_steps} ask_sampler={d.answer_sampler}")
    ready_s, peak_mb, client_ms = measure_app(args, d)

    seeded = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    tabs = {"generate": (lambda: pipe.iter_generate(args.prompt, generator=seeded()),
                         lambda s: pipe.decode_preview(s.pred_clean)),
            "caption": (lambda: pipe.iter_caption(args.image, generator=seeded()),
                        lambda s: app_text.token_view(pipe, s)),
            "ask": (lambda: pipe.iter_answer(args.image, args.question, generator=seeded()),
                    lambda s: app_text.token_view(pipe, s))}
    print(f"time_to_ready: {ready_s:.2f} s   peak_rss: {peak_mb:.0f} MB (target <= 1536)")
    print(f"{'tab':<10}{'steps':>6}{'client_ms':>11}{'med_ms':>8}{'bare_ms':>9}{'preview_ms':>12}{'preview_%':>11}"
          f"{'other_ms':>10}{'vae_ms':>8}")
    pct = {}
    for name, (make, preview) in tabs.items():
        bare, states = time_iterator(make, args.runs)
        prev, (steps, seen, med) = time_each(preview, states), client_ms[name]
        vae = f"{time_each(lambda s: pipe.decode_latents(s.pred_clean), states) * 1e3:>8.2f}" if name == "generate" \
            else f"{'-':>8}"
        pct[name] = 100 * prev / bare
        print(f"{name:<10}{steps:>6}{seen:>11.2f}{med:>8.1f}{bare * 1e3:>9.2f}{prev * 1e3:>12.2f}{pct[name]:>11.1f}"
              f"{seen - (bare + prev) * 1e3:>10.2f}{vae}")
    print("(preview_%: of a bare step, target <= 20; other_ms = client - bare - preview: serving, encoding; "
          "vae_ms: a full-VAE decode of the same states)")
    print(f"ready_s={ready_s:.2f} gen_step_ms={client_ms['generate'][1]:.2f} "
          f"cap_step_ms={client_ms['caption'][1]:.2f} ask_step_ms={client_ms['ask'][1]:.2f} "
          f"preview_pct_gen={pct['generate']:.1f} preview_pct_cap={pct['caption']:.1f} "
          f"preview_pct_ask={pct['ask']:.1f} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
