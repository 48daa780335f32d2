"""Measuring a D-DiT pipeline's passes, for ``benchmarks/released_size.py`` and ``benchmarks/gpu_check.py``: memory
(RSS, its peak), a clock on every text-encoder, transformer and VAE call, one step of every task under the authors'
settings and ours, and what a full run costs (passes x seconds per pass).

"Authors" = ``RELEASED_TASK_DEFAULTS``; "ours" = the bundled model's saved ``task_defaults`` (few steps, a guidance
interval, the confidence sampler with early stop).
"""

from __future__ import annotations

import json
import resource
import threading
import time
from pathlib import Path
from typing import Any, Callable

GIB = 1024 ** 3
PROMPT = "a photo of a red bicycle on the left of a blue wall"
QUESTION = "what color is the circle?"
GPUS_GIB = (16, 24, 80)
CUDA_OVERHEAD_GIB = 1.0  # CUDA context and allocator slack assumed beside weights and activations
SETTINGS = ("authors", "ours")
TASKS = ("generate", "caption", "answer")


def rss_bytes() -> int:
    """This process's resident set size now."""
    import psutil

    return psutil.Process().memory_info().rss


def rss_parts() -> dict[str, float]:
    """GiB resident now: all (VmRSS), anonymous (RssAnon) and file-backed (RssFile: memory-mapped weights, which the
    kernel can drop and read again); empty off Linux."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = {line.split(":")[0]: line.split(":")[1] for line in lines if ":" in line}
    return {k: gib(int(fields[k].split()[0]) * 1024) for k in ("VmRSS", "RssAnon", "RssFile") if k in fields}


def max_rss_bytes() -> int:
    """This process's peak resident set size so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRSS:
    """Polls the RSS every 20 ms while in use; ``peak`` is the highest seen (``rss_bytes`` at entry included)."""

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def publish(report: dict, text: str, out: str | None) -> dict:
    """Print a benchmark's Markdown ``text``, keep it in ``report`` and write the report as JSON to ``out``."""
    report["markdown"] = text
    print("\n" + text)
    if out:
        Path(out).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {out}")
    return report


def gib(n_bytes: float) -> float:
    return round(n_bytes / GIB, 2)


def synchronize(device) -> None:
    """Wait for queued CUDA work (a no-op elsewhere), so that wall-clock times mean what they say."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class PassClock:
    """Times every forward of the given modules (hooks) and every call of the given methods (wrappers): a record
    per call with its seconds and the batch and text tokens it ran on. ``take()`` returns the records so far and
    clears them."""

    def __init__(self, modules: dict, methods: dict[str, tuple[Any, str]], device):
        self.records: list[dict] = []
        self.device = device
        self._handles, self._restore = [], []
        for name, module in modules.items():
            self._handles.append(module.register_forward_pre_hook(self._pre(name), with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._post(name), with_kwargs=True))
        for name, (owner, attribute) in methods.items():
            original = getattr(owner, attribute)
            setattr(owner, attribute, self._timed(name, original))
            self._restore.append((owner, attribute))

    def _pre(self, name: str) -> Callable:
        def hook(module, args, kwargs):
            synchronize(self.device)
            module._pass_clock_started = (time.perf_counter(), time.process_time(), _shape(name, args, kwargs))
        return hook

    def _post(self, name: str) -> Callable:
        def hook(module, args, kwargs, output):
            synchronize(self.device)
            began, cpu, (batch, tokens) = module._pass_clock_started
            self.records.append(self._record(name, batch, tokens, began, cpu))
        return hook

    def _timed(self, name: str, method: Callable) -> Callable:
        def timed(pixels, *args, **kwargs):
            synchronize(self.device)
            began, cpu = time.perf_counter(), time.process_time()
            out = method(pixels, *args, **kwargs)
            synchronize(self.device)
            self.records.append(self._record(name, int(pixels.shape[0]), None, began, cpu))
            return out
        return timed

    @staticmethod
    def _record(name: str, batch: int, tokens: int | None, began: float, cpu: float) -> dict:
        """One call: seconds, and the share of the torch threads' time this process got (CPU: < 1 when other
        processes compete for the cores)."""
        import torch

        seconds = time.perf_counter() - began
        share = (time.process_time() - cpu) / (seconds * torch.get_num_threads()) if seconds > 0 else None
        return {"what": name, "batch": batch, "tokens": tokens, "seconds": seconds,
                "cpu_share": None if share is None else round(share, 2)}

    def take(self) -> list[dict]:
        records, self.records = self.records, []
        return records

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        for owner, attribute in self._restore:
            delattr(owner, attribute)  # the instance attribute goes; the class's method shows again


def _shape(name: str, args: tuple, kwargs: dict) -> tuple[int, int]:
    """(batch, text tokens) of a text-encoder call (input_ids) or a transformer call (encoder_hidden_states)."""
    if name == "text_encoder":
        ids = kwargs.get("input_ids", args[0] if args else None)
        return int(ids.shape[0]), int(ids.shape[1])
    states = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
    return int(states.shape[0]), int(states.shape[1])


def settings_for(which: str) -> dict:
    """Per-task options: the authors' (``RELEASED_TASK_DEFAULTS``) or ours (the bundled model's saved
    ``task_defaults``); ``resolution`` is the released model's in both."""
    from ddit.bundled import bundled_model_path
    from ddit.model_folder import read_index, saved_defaults
    from ddit.task_defaults import RELEASED_TASK_DEFAULTS, TaskDefaults

    if which == "authors":
        defaults = RELEASED_TASK_DEFAULTS
    else:
        defaults = TaskDefaults.from_dict(saved_defaults(read_index(bundled_model_path())))
    out = {}
    for task in TASKS:
        options = {k: v for k, v in getattr(defaults, task).to_dict().items() if v is not None}
        if task == "generate":
            options.pop("height", None), options.pop("width", None)
        out[task] = options
    return out


def describe(options: dict) -> str:
    """The options that decide a run's cost, in a few words."""
    keys = ("num_inference_steps", "guidance_scale", "guidance_interval", "max_sequence_length", "max_length",
            "total_length", "sampler", "threshold", "eos_early_stop")
    return ", ".join(f"{k.replace('num_inference_steps', 'steps')}={options[k]}" for k in keys if k in options)


def at_most(options: dict) -> bool:
    """Whether the text loop may stop before ``num_inference_steps`` passes (threshold or early stop)."""
    return bool(options.get("threshold") or options.get("eos_early_stop") or options.get("block_length"))


# ---------------------------------------------------------------- measuring
def time_passes(pipe, clock: PassClock, settings: dict[str, dict], batch: int, image, device) -> dict:
    """One step of every task under every settings at ``batch``: the records of its passes, and peak RSS.

    A T2I step is timed twice: guided (the CFG batch, 2b rows) and with guidance 1 (b rows)."""
    import torch

    prompts, images, questions = [PROMPT] * batch, [image] * batch, [QUESTION] * batch
    runs: dict[str, dict] = {}
    for which, options in settings.items():
        cases = {"generate_cfg": lambda o=options: next(pipe.iter_generate(
                     prompts, generator=torch.Generator().manual_seed(0), **o["generate"])),
                 "generate_single": lambda o=options: next(pipe.iter_generate(
                     prompts, generator=torch.Generator().manual_seed(0), **{**o["generate"], "guidance_scale": 1.0})),
                 "caption": lambda o=options: next(pipe.iter_caption(
                     images, generator=torch.Generator().manual_seed(0), **o["caption"])),
                 "answer": lambda o=options: next(pipe.iter_answer(
                     images, questions, generator=torch.Generator().manual_seed(0), **o["answer"]))}
        for case, run in cases.items():
            clock.take()
            if torch.device(device).type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with PeakRSS() as peak:
                began = time.perf_counter()
                run()
                synchronize(device)
                wall = time.perf_counter() - began
            record = {"passes": clock.take(), "wall_seconds": round(wall, 3), "peak_rss_gib": gib(peak.peak),
                      "rss_rise_gib": gib(peak.peak - peak.start)}
            if torch.device(device).type == "cuda":
                record["peak_cuda_gib"] = gib(torch.cuda.max_memory_allocated(device))
            runs[f"{which}/{case}"] = record
            print(f"  {which:7s} {case:15s} b={batch}: " + ", ".join(
                f"{p['what']} ({p['batch']}x{p['tokens']}) {p['seconds']:.2f} s" for p in record["passes"]),
                flush=True)
    return runs


def seconds_of(records: list[dict], what: str, full_share: bool = False) -> float | None:
    """The fastest ``what`` call among ``records``; with ``full_share``, its seconds times the CPU share it got (what
    it would take with the cores to itself, for compute-bound work)."""
    found = [r["seconds"] * (min(1.0, r.get("cpu_share") or 1.0) if full_share else 1.0)
             for r in records if r["what"] == what]
    return min(found) if found else None


def plan(scheduler, settings: dict[str, dict]) -> dict[str, dict]:
    """Passes of a full default run of each task under each settings: transformer passes (= steps), how many of the
    T2I ones are on the CFG batch (``planned_passes`` of the scheduler), and whether the text loop may stop early."""
    from ddit.image_sampling import planned_passes

    out = {}
    for which, options in settings.items():
        gen = options["generate"]
        steps = gen["num_inference_steps"]
        guided = planned_passes(scheduler, steps, gen["guidance_scale"], gen.get("guidance_interval")) - steps
        out[f"{which}/generate"] = {"settings": describe(gen), "transformer_passes": steps, "cfg_batch_passes": guided,
                                    "at_most": False}
        for task in ("caption", "answer"):
            opts = options[task]
            out[f"{which}/{task}"] = {"settings": describe(opts), "transformer_passes": opts["num_inference_steps"],
                                      "at_most": at_most(opts)}
    return out


def extrapolate(plans: dict[str, dict], runs: dict[str, dict], vae_decode: dict, full_share: bool = False) -> dict:
    """A full default run of each task: its passes (``plan``) x the measured seconds per pass (``full_share``: scaled
    by the CPU share each pass got), + the VAE decode (T2I) or encode (text tasks)."""
    out: dict[str, dict] = {}
    for key, planned in plans.items():
        which, task = key.split("/")
        steps = planned["transformer_passes"]
        if task == "generate":
            guided = planned["cfg_batch_passes"]
            cfg, single = runs[f"{which}/generate_cfg"]["passes"], runs[f"{which}/generate_single"]["passes"]
            per = {"text_encoder": seconds_of(cfg if guided else single, "text_encoder", full_share),
                   "transformer_cfg": seconds_of(cfg, "transformer", full_share),
                   "transformer_single": seconds_of(single, "transformer", full_share),
                   "vae_decode": seconds_of([vae_decode], "vae_decode", full_share)}
            seconds = (per["text_encoder"] + guided * per["transformer_cfg"] +
                       (steps - guided) * per["transformer_single"] + per["vae_decode"])
            out[key] = {**planned, "text_encoder_passes": 1}
        else:
            records = runs[key]["passes"]
            per = {w: seconds_of(records, w, full_share) for w in ("text_encoder", "transformer", "vae_encode")}
            seconds = steps * (per["text_encoder"] + per["transformer"]) + per["vae_encode"]
            out[key] = {**planned, "text_encoder_passes": steps,
                        "text_tokens": next(r["tokens"] for r in records if r["what"] == "transformer")}
        out[key].update(seconds=round(seconds, 3), per_pass_seconds=per)
    return out


def parameter_memory(pipe) -> dict:
    """Parameters (and persistent buffers) of each component, and their bytes in fp32 and bf16."""
    out = {}
    for name in ("text_encoder", "transformer", "vae"):
        module = getattr(pipe, name)
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers())
        out[name] = {"parameters": params, "buffers": buffers, "fp32_gib": gib(4 * (params + buffers)),
                     "bf16_gib": gib(2 * (params + buffers))}
    total = {k: sum(v[k] for v in out.values()) for k in ("parameters", "buffers")}
    out["total"] = {**total, "fp32_gib": gib(4 * sum(total.values())), "bf16_gib": gib(2 * sum(total.values()))}
    return out


def gpu_fit(memory: dict, activations_bf16_gib: float) -> list[dict]:
    """Whether weights + activations + CUDA overhead fit each GPU, per dtype, with and without model CPU offload
    (offload: only the component running is on the GPU, so the largest one sets the need)."""
    rows = []
    for dtype, scale in (("fp32", 2.0), ("bf16", 1.0)):
        key = f"{dtype}_gib"
        whole = memory["total"][key]
        largest = max(memory[n][key] for n in ("text_encoder", "transformer", "vae"))
        for offload, weights in (("no", whole), ("yes", largest)):
            need = weights + activations_bf16_gib * scale + CUDA_OVERHEAD_GIB
            rows.append({"dtype": dtype, "cpu_offload": offload, "need_gib": round(need, 1),
                         **{f"{g}GB": need <= g for g in GPUS_GIB}})
    return rows


def passes_label(run: dict) -> str:
    """A full run's passes as the tables show them: `≤8`, `28 (+28 CFG)`."""
    text = f"{'≤' if run['at_most'] else ''}{run['transformer_passes']}"
    if run.get("cfg_batch_passes"):
        text += f" (+{run['cfg_batch_passes']} CFG)"
    return text
