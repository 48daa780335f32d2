"""The released D-DiT at its real size, with random weights: build, save, load as a user does, and time every pass.

    nice -n 10 python benchmarks/released_size.py --folder /tmp/ddit-released-random --out /tmp/released_size.json
    python benchmarks/released_size.py --small --folder /tmp/ddit-small --out /tmp/small.json   # seconds
    python benchmarks/released_size.py --from-json /tmp/released_size.json                       # print it again

The folder (``released_build.py``) is in the released checkpoints' layout at their dimensions (docs/design.md §3.6),
with random weights, built in a child process, straight in bf16, one component at a time, and saved sharded
(``max_shard_size`` 5GB). This process then opens it as a user does,
``DualDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.bfloat16)``, and reports in one run:

- load time, RSS (anonymous and file-backed: bf16 safetensors are memory-mapped, not copied) and peak RSS;
- seconds of each text-encoder and transformer pass of each task at 512 px (T2I with and without the CFG batch,
  caption, answer) and of the VAE encode and decode, under the authors' settings and ours (``released_timing.py``),
  and a full default run of each task extrapolated as passes x seconds per pass; each pass also records the share
  of the CPU it got, and the full runs are also given scaled to a whole CPU (the machine may be shared);
- one short answer end to end with our settings, warm in this process and from a fresh process (load + answer,
  that process's own peak RSS);
- memory per component in fp32 and bf16 from the parameter counts, and what fits a 16 / 24 / 80 GB GPU with and
  without ``enable_model_cpu_offload`` (estimates; ``benchmarks/gpu_check.py`` measures on a GPU).

``--small`` runs the same at toy dimensions in seconds (a test does). An existing pipeline folder (a real released
checkpoint too) is measured as it is and never deleted; a folder this run built is deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # released_build, released_timing: beside this file
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: run from a clone
import released_build as rb  # noqa: E402
import released_timing as rt  # noqa: E402


def build_in_child(folder: Path, small: bool, layers: int | None, seed: int) -> dict:
    """Build the folder in a child process (its memory is given back before this process loads it)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--build-only", "--folder", str(folder),
               "--seed", str(seed)] + (["--small"] if small else []) + (["--layers", str(layers)] if layers else [])
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building {folder} failed (exit {done.returncode}): "
                           + " | ".join(done.stderr.strip().splitlines()[-3:]))
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_seconds": round(time.perf_counter() - began, 1)}


def load_as_user(folder: Path, dims: rb.Dims, device: str, out: dict):
    """``from_pretrained`` in bf16, timed, then every weight page read once (timed apart); the pipeline."""
    import torch

    from ddit import DualDiffusionPipeline
    from ddit.task_defaults import RELEASED_TASK_DEFAULTS

    before = rt.rss_bytes()
    with rt.PeakRSS() as peak:
        began = time.perf_counter()
        pipe = DualDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.bfloat16, device=device)
        seconds = time.perf_counter() - began
    pipe.set_progress_bar_config(disable=True)
    authors = pipe.defaults == RELEASED_TASK_DEFAULTS
    if pipe.resolution != dims.resolution:  # --small runs its toy model at a toy image side
        pipe.defaults.resolution = dims.resolution
    out["load"] = {"seconds": round(seconds, 1), "rss_before_gib": rt.gib(before), "rss_after": rt.rss_parts(),
                   "peak_rss_gib": rt.gib(peak.peak), "dtype": str(pipe.transformer.dtype),
                   "authors_defaults": authors, "resolution": pipe.resolution, "mask_token_id": pipe.mask_token_id,
                   "tokens": len(pipe.tokenizer)}
    print(f"loaded in {seconds:.1f} s, RSS {rt.rss_parts()} GiB (peak {rt.gib(peak.peak)} GiB)", flush=True)
    began = time.perf_counter()
    page_in(pipe)
    out["load"].update(page_in_seconds=round(time.perf_counter() - began, 1), rss_paged_in=rt.rss_parts())
    print(f"weights paged in: {out['load']['page_in_seconds']} s, RSS {rt.rss_parts()} GiB", flush=True)
    return pipe


def page_in(pipe) -> None:
    """Read one value of every 4 KiB page of every weight: memory-mapped weights are read from the page cache or the
    disk now, not during the first timed pass."""
    import torch

    with torch.no_grad():
        for name in ("text_encoder", "transformer", "vae"):
            module = getattr(pipe, name)
            for tensor in list(module.parameters()) + list(module.buffers()):
                if tensor.device.type == "cpu" and tensor.numel():
                    tensor.detach().reshape(-1)[:: max(1, 4096 // tensor.element_size())].float().sum()


def measure(folder: Path, dims: rb.Dims, device: str, out: dict) -> dict:
    """Load ``folder`` as a user does and time everything (see the module's docstring)."""
    import numpy as np
    import torch

    import shapes_world as sw

    pipe = load_as_user(folder, dims, device, out)
    out["memory"] = rt.parameter_memory(pipe)
    image = sw.render(sw.sample_scene(np.random.default_rng(0)), np.random.default_rng(0))
    settings = {which: rt.settings_for(which) for which in rt.SETTINGS}
    clock = rt.PassClock({"text_encoder": pipe.text_encoder, "transformer": pipe.transformer},
                         {"vae_encode": (pipe.vae, "encode"), "vae_decode": (pipe.vae, "decode")}, device)
    with torch.no_grad():
        side = pipe.resolution // pipe.vae_scale_factor
        pipe.decode_latents(torch.randn(1, dims.latent_channels, side, side, generator=torch.Generator().manual_seed(0))
                            .to(device, pipe.transformer.dtype))
        out["vae_decode"] = next(r for r in clock.take() if r["what"] == "vae_decode")
    print(f"VAE decode at {pipe.resolution} px: {out['vae_decode']['seconds']:.2f} s", flush=True)
    out["runs"] = rt.time_passes(pipe, clock, settings, 1, image, device)
    out["plans"] = rt.plan(pipe.scheduler, settings)

    ours = settings["ours"]["answer"]
    with rt.PeakRSS() as peak:
        began = time.perf_counter()
        states = list(pipe.iter_answer(image, rt.QUESTION, generator=torch.Generator().manual_seed(0), **ours))
        text = pipe.decode_text(states[-1])[0]
        wall = time.perf_counter() - began
    out["short_answer"] = {"seconds": round(wall, 1), "transformer_passes": states[-1].forward_passes,
                           "text_encoder_passes": sum(r["what"] == "text_encoder" for r in clock.take()),
                           "peak_rss_gib": rt.gib(peak.peak), "settings": rt.describe(ours), "question": rt.QUESTION,
                           "answer_tokens": int(states[-1].response_mask.sum()), "text": text}
    clock.close()
    out["peak_rss_gib"] = max(rt.gib(rt.max_rss_bytes()), out["short_answer"]["peak_rss_gib"],
                              *(r["peak_rss_gib"] for r in out["runs"].values()))
    out["rss_end"] = rt.rss_parts()
    print(f"short answer: {wall:.1f} s, {states[-1].forward_passes} transformer pass(es)", flush=True)
    return out


def summarise(report: dict) -> dict:
    """Add what follows from the measurements: the CPU share, the full runs (as measured and scaled to a whole CPU),
    the activation estimate and the GPU fit. Also reads the JSON of a run that saved ``full_runs`` but no plans."""
    runs = report["runs"]
    shares = sorted(p["cpu_share"] for r in runs.values() for p in r["passes"] if p.get("cpu_share") is not None)
    report["cpu_share"] = {"min": shares[0], "median": shares[len(shares) // 2], "max": shares[-1]}
    if "vae_decode" not in report:  # a run saved before the decode's share was kept: not scaled
        report["vae_decode"] = {"what": "vae_decode", "seconds": report["vae_decode_seconds"], "cpu_share": None}
    plans = report.get("plans") or {key: {k: run[k] for k in ("settings", "transformer_passes", "cfg_batch_passes",
                                                               "at_most") if k in run}
                                    for key, run in report["full_runs"].items()}
    report["full_runs"] = rt.extrapolate(plans, runs, report["vae_decode"])
    report["full_runs_full_cpu"] = rt.extrapolate(plans, runs, report["vae_decode"], full_share=True)
    report["activations_gib"] = max(r["rss_rise_gib"] for r in runs.values())
    report["gpu_fit"] = rt.gpu_fit(report["memory"], report["activations_gib"])
    return report


def fresh_answer(folder: Path, device: str, resolution: int | None) -> dict:
    """What a user's first short answer costs: a new process loads the folder (bf16), answers one question with our
    settings and reports its wall time and peak RSS (``--answer-only``)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--answer-only", "--folder", str(folder), "--device",
               device] + (["--resolution", str(resolution)] if resolution else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the fresh-process answer failed (exit {done.returncode}): "
                           + " | ".join(done.stderr.strip().splitlines()[-3:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def answer_once(folder: Path, device: str, resolution: int | None) -> dict:
    """``--answer-only``: load, answer once with our settings, report (the process does nothing else)."""
    began = time.perf_counter()
    import numpy as np
    import torch

    import shapes_world as sw
    from ddit import DualDiffusionPipeline

    imported = time.perf_counter()
    pipe = DualDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.bfloat16, device=device)
    pipe.set_progress_bar_config(disable=True)
    if resolution:
        pipe.defaults.resolution = resolution
    loaded = time.perf_counter()
    image = sw.render(sw.sample_scene(np.random.default_rng(0)), np.random.default_rng(0))
    options = rt.settings_for("ours")["answer"]
    states = list(pipe.iter_answer(image, rt.QUESTION, generator=torch.Generator().manual_seed(0), **options))
    pipe.decode_text(states[-1])
    done = time.perf_counter()
    return {"import_seconds": round(imported - began, 1), "load_seconds": round(loaded - imported, 1),
            "answer_seconds": round(done - loaded, 1), "total_seconds": round(done - began, 1),
            "transformer_passes": states[-1].forward_passes, "peak_rss_gib": rt.gib(rt.max_rss_bytes()),
            "rss_end": rt.rss_parts(), "settings": rt.describe(options)}


# ---------------------------------------------------------------- report
def markdown(report: dict) -> str:
    """The report as Markdown: the set-up and the load, then the tables."""
    lines = [f"Machine: {report['machine']}; {report['threads']} torch threads; load average before "
             f"{_load(report['load_average_before'])}, after {_load(report.get('load_average_after'))}; size: "
             f"{report['size']}; bf16.", ""]
    build = report.get("build")
    if build:
        parts = ", ".join(f"{k} {v['seconds']} s" for k, v in build["steps"].items())
        lines.append(f"- Build ({build['where']}, {build['wall_seconds']} s: {parts}): peak RSS "
                     f"{build['peak_rss_gib']} GiB; the folder is {build['folder_gib']} GiB in {build['files']} files.")
    load = report["load"]
    lines += [f"- Load, `DualDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.bfloat16)`: {load['seconds']} "
              f"s (RSS after: {_rss(load['rss_after'])}; the bf16 weights are memory-mapped, not copied); reading "
              f"every weight page once: {load['page_in_seconds']} s more (RSS then {_rss(load['rss_paged_in'])}). "
              f"Opened with the authors' settings: {load['authors_defaults']}; {load['tokens']} tokens, mask id "
              f"{load['mask_token_id']}.",
              f"- CPU share of the timed passes (this process's CPU time / (wall time x threads); < 1 when other "
              f"processes use the cores): median {report['cpu_share']['median']}, range "
              f"{report['cpu_share']['min']}-{report['cpu_share']['max']}.", ""]
    return "\n".join(lines + _tables(report))


def _tables(report: dict) -> list[str]:
    lines = ["| component | parameters | fp32 GiB | bf16 GiB |", "|---|---:|---:|---:|"]
    for name, m in report["memory"].items():
        lines.append(f"| {name} | {m['parameters'] / 1e6:,.1f} M | {m['fp32_gib']} | {m['bf16_gib']} |")
    lines += ["", "| settings / case | pass | batch × text tokens | seconds | CPU share |", "|---|---|---|---:|---:|"]
    decode = report["vae_decode"]
    for key, passes in [("—", [decode])] + [(k, r["passes"]) for k, r in report["runs"].items()]:
        for p in passes:
            shape = f"{p.get('batch', 1)}" + ("" if p.get("tokens") is None else f" × {p['tokens']}")
            share = "" if p.get("cpu_share") is None else p["cpu_share"]
            lines.append(f"| {key} | {p['what']} | {shape} | {p['seconds']:.2f} | {share} |")
    lines += ["", "| task | authors' settings | passes | est. s (whole CPU) | our settings | passes | est. s "
                  "(whole CPU) |", "|---|---|---:|---:|---|---:|---:|"]
    full, whole = report["full_runs"], report["full_runs_full_cpu"]
    for task in rt.TASKS:
        a, o = f"authors/{task}", f"ours/{task}"
        lines.append(f"| {task} | {full[a]['settings']} | {rt.passes_label(full[a])} | {full[a]['seconds']:,.1f} "
                     f"({whole[a]['seconds']:,.1f}) | {full[o]['settings']} | {rt.passes_label(full[o])} | "
                     f"{full[o]['seconds']:,.1f} ({whole[o]['seconds']:,.1f}) |")
    lines += ["", "Est. s = passes x the seconds per pass above + one VAE decode (T2I) or encode (text tasks); in "
              "brackets with each pass scaled by its CPU share. Passes: transformer passes; the text encoder runs "
              "once per T2I run and once per text step; `(+k CFG)`: k of the T2I passes are on the doubled batch; "
              "`≤`: the confidence sampler's threshold or early stop may end sooner. Ours = the bundled model's "
              "saved `task_defaults`.", ""]
    s = report["short_answer"]
    lines.append(f"- Short answer, warm (this process, weights paged in; our settings: {s['settings']}): "
                 f"{s['seconds']} s, {s['transformer_passes']} transformer pass(es) and {s['text_encoder_passes']} "
                 f"text-encoder pass(es) over {s['answer_tokens']} answer tokens; peak RSS {s['peak_rss_gib']} GiB "
                 f"(this process's peak: {report['peak_rss_gib']} GiB).")
    fresh = report.get("fresh_answer")
    if fresh:
        lines.append(f"- Short answer from a fresh process (import {fresh['import_seconds']} s + load "
                     f"{fresh['load_seconds']} s + answer {fresh['answer_seconds']} s = {fresh['total_seconds']} s; "
                     f"{fresh['transformer_passes']} transformer pass(es)): peak RSS {fresh['peak_rss_gib']} GiB "
                     f"(at the end: {_rss(fresh['rss_end'])}).")
    lines += ["", f"What fits a GPU (estimate: weights + activations {report['activations_gib']} GiB, the largest RSS "
                  f"rise of a pass here in bf16, doubled in fp32, + {rt.CUDA_OVERHEAD_GIB} GiB CUDA overhead; with "
                  "offload the largest component sets the need):", "",
              "| dtype | enable_model_cpu_offload | need GiB | " + " | ".join(f"{g} GB" for g in rt.GPUS_GIB) + " |",
              "|---|---|---:|" + "---|" * len(rt.GPUS_GIB)]
    for row in report["gpu_fit"]:
        lines.append(f"| {row['dtype']} | {row['cpu_offload']} | {row['need_gib']} | " +
                     " | ".join("yes" if row[f"{g}GB"] else "no" for g in rt.GPUS_GIB) + " |")
    return lines


def _rss(parts: dict) -> str:
    names = {"VmRSS": "total", "RssAnon": "anonymous", "RssFile": "file-backed"}
    return ", ".join(f"{names[k]} {v} GiB" for k, v in parts.items()) or "n/a"


def _load(values) -> str:
    return "n/a" if not values else "/".join(f"{v:.1f}" for v in values)


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / rt.GIB
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, torch {torch.__version__}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", help="the pipeline folder: built there (random weights) when absent or empty")
    parser.add_argument("--out", default=None, help="JSON report path")
    parser.add_argument("--small", action="store_true", help="toy dimensions: the whole run in seconds")
    parser.add_argument("--layers", type=int, default=None,
                        help="joint blocks and T5 layers (a quicker partial-size check; default: the size's)")
    parser.add_argument("--device", default="cpu", help="where to load and run (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true",
                        help="keep the folder this run built (default: delete it afterwards; an existing folder, "
                             "e.g. a real released checkpoint, is measured as it is and never deleted)")
    parser.add_argument("--no-fresh-answer", dest="fresh_answer", action="store_false",
                        help="skip the short answer in a fresh process (load + answer, its own peak RSS)")
    parser.add_argument("--from-json", default=None, help="print the report of an earlier run's JSON again")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)  # the child processes
    parser.add_argument("--answer-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--resolution", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.layers is not None and args.layers < 1:
        parser.error(f"--layers must be at least 1, got {args.layers}")
    if not args.folder and not args.from_json:
        parser.error("--folder is required (or --from-json)")
    return args


def run(args: argparse.Namespace, argv: list[str] | None) -> dict:
    """Build the folder when needed, measure it, delete what was built (unless --keep); the report."""
    dims = rb.SMALL if args.small else rb.RELEASED
    dims = replace(dims, depth=args.layers, t5_layers=args.layers) if args.layers else dims
    folder = Path(args.folder)
    if folder.exists() and not (folder / "model_index.json").is_file():
        if not folder.is_dir() or any(folder.iterdir()):
            raise ValueError(f"{folder} exists and is not a pipeline folder; give a new or empty folder")
        folder.rmdir()
    build = not folder.exists()  # an existing pipeline folder (a real checkpoint too) is measured as it is
    import torch

    size = ("small" if args.small else "released") + (f", {args.layers} layers" if args.layers else "")
    report: dict[str, Any] = {"size": size, "dims": asdict(dims), "machine": machine(), "device": args.device,
                              "threads": torch.get_num_threads(), "load_average_before": os.getloadavg(),
                              "command": "python benchmarks/released_size.py " +
                                         " ".join(sys.argv[1:] if argv is None else argv)}
    if build:
        print(f"building {folder} ({size}) ...", flush=True)
        if args.small:  # seconds: in this process
            began = time.perf_counter()
            report["build"] = {"steps": rb.save_released_folder(folder, dims, args.seed), "where": "in this process",
                               "peak_rss_gib": rt.gib(rt.max_rss_bytes())}
            report["build"]["wall_seconds"] = round(time.perf_counter() - began, 1)
        else:
            report["build"] = {**build_in_child(folder, args.small, args.layers, args.seed), "where": "child process"}
        report["build"]["files"], n_bytes = folder_size(folder)
        report["build"]["folder_gib"] = rt.gib(n_bytes)
    try:
        measure(folder, dims, args.device, report)
        gc.collect()
        if args.fresh_answer:
            print("a short answer in a fresh process ...", flush=True)
            report["fresh_answer"] = fresh_answer(folder, args.device, dims.resolution if args.small else None)
        report["load_average_after"] = os.getloadavg()
    finally:
        if build and not args.keep:  # only a folder this run built is deleted
            shutil.rmtree(folder, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> dict:
    """Build (if needed), load, measure, print the Markdown report and write the JSON; returns the report."""
    args = parse_args(argv)
    if args.build_only:  # the child: build, print one JSON line
        dims = rb.SMALL if args.small else rb.RELEASED
        dims = replace(dims, depth=args.layers, t5_layers=args.layers) if args.layers else dims
        steps = rb.save_released_folder(Path(args.folder), dims, args.seed)
        print(json.dumps({"steps": steps, "peak_rss_gib": rt.gib(rt.max_rss_bytes())}))
        return {}
    if args.answer_only:
        print(json.dumps(answer_once(Path(args.folder), args.device, args.resolution)))
        return {}
    report = json.loads(Path(args.from_json).read_text()) if args.from_json else run(args, argv)
    return rt.publish(report, markdown(summarise(report)), args.out)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        raise SystemExit(f"error: {' '.join(str(err).split())}") from None
