"""One prepared GPU check of the released-size D-DiT (random weights, bf16): speed, memory and how much of the GPU a
transformer pass uses, under the authors' settings and ours. A few minutes on one GPU.

    python benchmarks/gpu_check.py --out gpu_check.json                      # CUDA, released size, batch 1 and 8
    python benchmarks/gpu_check.py --small --device cpu --out /tmp/gpu.json  # the same script at toy size (a test)

It builds the pipeline of ``benchmarks/released_build.py`` straight onto the device in bf16 (meta device, then a
cheap random init: no folder, no fp32 copy) and prints, for each batch size:

- seconds per step of each task (T2I guided and unguided, caption, answer: a text step is a text-encoder pass and
  a transformer pass), what the first step spent outside them ("other": tokenizer, sampler, copies), the peak
  memory of each, and a full default run extrapolated (passes x seconds per pass);
- the bf16 matmul peak (TFLOPS of a big square matmul, timed the same way) and the transformer's share of it
  (FLOPs of a pass counted by ``FlopCounterMode`` / its seconds / the peak);
- one short answer end to end with our settings, and (CUDA, batch 1) a guided T2I step and an answer step with
  ``enable_model_cpu_offload``.

"Authors" = ``RELEASED_TASK_DEFAULTS``; "ours" = the bundled model's saved ``task_defaults``. Each part that fails
is reported in one line and the rest still runs, so one run gives every number it can.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # released_build, released_timing: beside this file
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: run from a clone
import released_build as rb  # noqa: E402
import released_timing as rt  # noqa: E402

TASK_CASES = {"generate": "generate_cfg", "generate (no CFG)": "generate_single", "caption": "caption",
              "answer": "answer"}


def matmul_peak(device, dtype, n: int, repeats: int) -> dict:
    """TFLOPS of an n x n x n matmul in ``dtype`` on ``device`` (best of ``repeats`` after a warm-up)."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    rt.synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        a @ b
        rt.synchronize(device)
        best = min(best, time.perf_counter() - began)
    return {"n": n, "seconds": best, "tflops": 2 * n ** 3 / best / 1e12}


def transformer_flops(pipe, batch: int, tokens: int, logits: bool) -> int:
    """FLOPs of one transformer pass on ``batch`` rows of a full-resolution image and ``tokens`` text tokens
    (attention through the math kernel so that it is counted; not timed)."""
    import torch

    from train.reporting import FlopCount

    side = pipe.resolution // pipe.vae_scale_factor
    config, device, dtype = pipe.transformer.config, pipe.transformer.device, pipe.transformer.dtype
    latents = torch.zeros(batch, config.in_channels, side, side, device=device, dtype=dtype)
    states = torch.zeros(batch, tokens, config.joint_attention_dim, device=device, dtype=dtype)
    with torch.no_grad(), FlopCount() as count:
        pipe.transformer(latents, states, torch.zeros(batch, device=device), mask_token_id=pipe.mask_token_id,
                         return_logits=logits)
    return int(count.total)


def step_table(pipe, runs: dict, peak_tflops: float | None, batch: int) -> list[dict]:
    """Per task and settings: seconds per step, peak memory, the transformer's FLOPs, achieved TFLOPS and share of
    the matmul peak."""
    rows = []
    for which in rt.SETTINGS:
        for task, case in TASK_CASES.items():
            run = runs[f"{which}/{case}"]
            passes = run["passes"]
            tf = next(p for p in passes if p["what"] == "transformer")
            t5 = rt.seconds_of(passes, "text_encoder") if case in ("caption", "answer") else 0.0
            flops = transformer_flops(pipe, tf["batch"], tf["tokens"], logits=case in ("caption", "answer"))
            achieved = flops / tf["seconds"] / 1e12
            other = run["wall_seconds"] - sum(p["seconds"] for p in passes)  # tokenizer, sampler, copies
            rows.append({"batch": batch, "settings": which, "task": task, "rows x text tokens":
                         f"{tf['batch']} x {tf['tokens']}", "step_seconds": tf["seconds"] + t5,
                         "other_seconds": other,
                         "transformer_seconds": tf["seconds"], "text_encoder_seconds": t5 or None,
                         "transformer_tflop": flops / 1e12, "achieved_tflops": achieved,
                         "share_of_peak": achieved / peak_tflops if peak_tflops else None,
                         "peak_memory_gib": run.get("peak_cuda_gib", run["peak_rss_gib"])})
    return rows


def offload_steps(pipe, settings: dict, image, device) -> dict:
    """A guided T2I step and an answer step (authors' settings) with ``enable_model_cpu_offload``: seconds, peak
    GPU memory (the weights move to the CPU; each step copies the component it runs to the GPU)."""
    import torch

    pipe.enable_model_cpu_offload(device=device)
    out = {}
    for name, run in (("generate_cfg", lambda: next(pipe.iter_generate(rt.PROMPT, **settings["generate"]))),
                      ("answer", lambda: next(pipe.iter_answer(image, rt.QUESTION, **settings["answer"])))):
        run()  # warm-up
        torch.cuda.reset_peak_memory_stats(device)
        began = time.perf_counter()
        run()
        rt.synchronize(device)
        out[name] = {"seconds": time.perf_counter() - began,
                     "peak_cuda_gib": rt.gib(torch.cuda.max_memory_allocated(device))}
    return out


def attempt(report: dict, name: str, work: Callable[[], Any]) -> Any:
    """Run one part; a failure is kept in the report as one line (and printed), and the check goes on."""
    try:
        return work()
    except Exception as err:  # any failure of one part: report it, keep the others
        line = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        report.setdefault("errors", {})[name] = line
        print(f"{name} failed: {line}", file=sys.stderr, flush=True)
        traceback.print_exc(limit=3, file=sys.stderr)
        return None


def markdown(report: dict) -> str:
    """The report's tables."""
    lines = [f"Device: {report['device_name']}; size: {report['size']}; bf16; build {report.get('build_seconds')} s, "
             f"{report.get('weights_gib')} GiB of weights on the device."]
    peak = report.get("matmul")
    if peak:
        lines.append(f"bf16 matmul peak: {peak['tflops']:.1f} TFLOPS ({peak['n']}³, best of the repeats).")
    lines += ["", "| batch | settings | task | rows × text tokens | s / step | transformer s | text-encoder s | "
                  "other s | TFLOP / pass | achieved TFLOPS | share of peak | peak memory GiB |",
              "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in report.get("steps", []):
        share = "" if row["share_of_peak"] is None else f"{100 * row['share_of_peak']:.0f} %"
        t5 = "" if row["text_encoder_seconds"] is None else f"{row['text_encoder_seconds']:.4f}"
        lines.append(f"| {row['batch']} | {row['settings']} | {row['task']} | {row['rows x text tokens']} | "
                     f"{row['step_seconds']:.4f} | {row['transformer_seconds']:.4f} | {t5} | "
                     f"{row['other_seconds']:.4f} | "
                     f"{row['transformer_tflop']:.3g} | {row['achieved_tflops']:.3g} | {share} | "
                     f"{row['peak_memory_gib']} |")
    lines += ["", "| batch | task | authors' settings | passes | s | our settings | passes | s |",
              "|---:|---|---|---:|---:|---|---:|---:|"]
    for batch, full in report.get("full_runs", {}).items():
        for task in rt.TASKS:
            a, o = full[f"authors/{task}"], full[f"ours/{task}"]
            lines.append(f"| {batch} | {task} | {a['settings']} | {rt.passes_label(a)} | {a['seconds']:.2f} | "
                         f"{o['settings']} | {rt.passes_label(o)} | {o['seconds']:.2f} |")
    answer = report.get("short_answer")
    if answer:
        lines += ["", f"Short answer end to end (batch 1, our settings): {answer['seconds']:.3f} s, "
                      f"{answer['transformer_passes']} transformer pass(es)."]
    offload = report.get("offload")
    if offload:
        lines += ["", "With `enable_model_cpu_offload` (batch 1, authors' settings): " + "; ".join(
            f"{k} step {v['seconds']:.2f} s, peak {v['peak_cuda_gib']} GiB" for k, v in offload.items())]
    for name, line in report.get("errors", {}).items():
        lines.append(f"\nFAILED {name}: {line}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, ... or cpu (with --small)")
    parser.add_argument("--small", action="store_true", help="toy dimensions (seconds on a CPU)")
    parser.add_argument("--batches", default="1,8", help="batch sizes, comma-separated (default 1,8)")
    parser.add_argument("--matmul-size", type=int, default=None,
                        help="side of the peak matmul (default 8192; with --small 256)")
    parser.add_argument("--no-offload", dest="offload", action="store_false",
                        help="skip the enable_model_cpu_offload steps")
    parser.add_argument("--out", default=None, help="JSON report path")
    args = parser.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        parser.error(f"--batches must be whole numbers separated by commas, got {args.batches!r}")
    if not args.batches or min(args.batches) < 1:
        parser.error("--batches must be at least 1")
    return args


def prepare(args: argparse.Namespace, report: dict):
    """The matmul peak, then the pipeline built on the device; (pipe, image, settings, clock, VAE decode record)."""
    import numpy as np
    import torch

    import shapes_world as sw

    device, dtype = torch.device(args.device), torch.bfloat16
    dims = rb.SMALL if args.small else rb.RELEASED
    print(f"{report['device_name']}: matmul peak ...", flush=True)
    n = args.matmul_size or (256 if args.small else 8192)
    report["matmul"] = attempt(report, "matmul", lambda: matmul_peak(device, dtype, n, 3 if args.small else 20))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        pipe = rb.build_pipeline(dims, device, dtype, Path(workdir))
    rt.synchronize(device)
    report["build_seconds"] = round(time.perf_counter() - began, 1)
    report["weights_gib"] = rt.parameter_memory(pipe)["total"]["bf16_gib"]
    if args.small:
        pipe.defaults.resolution = dims.resolution
    print(f"built in {report['build_seconds']} s ({report['weights_gib']} GiB)", flush=True)
    image = sw.render(sw.sample_scene(np.random.default_rng(0)), np.random.default_rng(0))
    settings = {which: rt.settings_for(which) for which in rt.SETTINGS}
    clock = rt.PassClock({"text_encoder": pipe.text_encoder, "transformer": pipe.transformer},
                         {"vae_encode": (pipe.vae, "encode"), "vae_decode": (pipe.vae, "decode")}, device)
    with torch.no_grad():
        side = pipe.resolution // pipe.vae_scale_factor
        latents = torch.randn(1, dims.latent_channels, side, side, device=device, dtype=dtype)
        pipe.decode_latents(latents)  # warm-up
        clock.take()
        pipe.decode_latents(latents)
        decode = next(r for r in clock.take() if r["what"] == "vae_decode")
    return pipe, image, settings, clock, decode


def measure(args: argparse.Namespace, report: dict) -> None:
    """Every batch size's steps (a warm-up round, then the timed one), the short answer and the offload steps."""
    import torch

    pipe, image, settings, clock, decode = prepare(args, report)
    device = torch.device(args.device)
    peak = report["matmul"]["tflops"] if report["matmul"] else None
    plans = rt.plan(pipe.scheduler, settings)
    report["steps"], report["full_runs"] = [], {}
    for batch in args.batches:
        def measure_batch(batch: int = batch) -> None:
            print(f"batch {batch}: warm-up", flush=True)
            rt.time_passes(pipe, clock, settings, batch, image, device)
            print(f"batch {batch}: timed", flush=True)
            runs = rt.time_passes(pipe, clock, settings, batch, image, device)
            report["steps"] += step_table(pipe, runs, peak, batch)
            report["full_runs"][batch] = rt.extrapolate(plans, runs, decode)
        attempt(report, f"batch {batch}", measure_batch)

    def short_answer() -> dict:
        began = time.perf_counter()
        states = list(pipe.iter_answer(image, rt.QUESTION, generator=torch.Generator().manual_seed(0),
                                       **settings["ours"]["answer"]))
        pipe.decode_text(states[-1])
        rt.synchronize(device)
        return {"seconds": time.perf_counter() - began, "transformer_passes": states[-1].forward_passes}

    report["short_answer"] = attempt(report, "short answer", short_answer)
    clock.close()
    if args.offload and device.type == "cuda":
        report["offload"] = attempt(report, "offload", lambda: offload_steps(pipe, settings["authors"], image, device))


def main(argv: list[str] | None = None) -> dict:
    """Run the check; print the tables and write the JSON; returns the report."""
    args = parse_args(argv)
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device here; run on a GPU machine, or use --small --device cpu")
    if device.type != "cuda" and not args.small:
        raise SystemExit("error: the released size on a CPU is benchmarks/released_size.py's job; "
                         "use --small --device cpu here")
    report: dict[str, Any] = {
        "size": "small" if args.small else "released", "device": str(device), "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    measure(args, report)
    return rt.publish(report, markdown(report), args.out)


if __name__ == "__main__":
    main()
