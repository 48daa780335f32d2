"""The joint-loss training loop (paper eq. 9) on accelerate: data parallel, mixed precision, accumulation,
EMA, warm-up then constant LR, clipping, checkpoints with exact resume, logs, loss curve, sample grids.

Run folder: ``config.yaml``, ``metrics.jsonl``, ``loss.png``, ``samples/step_*.png``,
``checkpoints/step_*`` (accelerate state: model, optimizer, LR scheduler, RNG, EMA, step, data position;
written whole or not at all, see ``checkpoints.py``) and, at the end, ``pipeline/``: a
``DualDiffusionPipeline`` folder with the EMA weights. A LoRA run (``lora.enabled``) also writes ``lora/``:
the EMA adapters alone, ``pytorch_lora_weights.safetensors`` (``ddit.lora``, for ``pipe.load_lora_weights``),
and its ``pipeline/`` holds them merged into the base weights (a plain pipeline, sampling at full speed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from ddit.image_sampling import flow_scheduler
from ddit.latents import encode_latents
from ddit.lora import COMPONENTS, save_lora_weights
from ddit.losses import JointLossConfig, LossBreakdown, joint_loss, task_rows
from ddit.pipeline import DualDiffusionPipeline
from ddit.task_defaults import TaskDefaults
from ddit.text_layout import mask_token_id
from ddit.text_scheduler import MaskedDiffusionScheduler

from . import reporting
from .checkpoints import (check_free_space, check_output_dir, checkpoint_bytes, latest_checkpoint, remove_partial,
                          save_checkpoint)
from .components import add_lora, build_components, text_encoder_params
from .config import TrainConfig
from .data import collate, latent_pool, latent_pool_scenes, make_source, sample_prompts
from .distributed import clip_order, configure, ema_parts, final_parts, register_checkpointing, throwaway_pass
from .optimizer import build_adamw, param_groups

logger = logging.getLogger(__name__)

class JointObjective(torch.nn.Module):
    """The trained modules in one ``nn.Module`` (what accelerate wraps), returning the joint loss of eq. 9."""

    def __init__(self, transformer, text_encoder, mask_id: int, loss: JointLossConfig):
        super().__init__()
        self.transformer, self.text_encoder = transformer, text_encoder
        self.mask_id, self.loss = mask_id, loss
        self.text_noise = MaskedDiffusionScheduler(eps=loss.text_eps)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids=ids).last_hidden_state

    def forward(self, latents, prompt_ids, input_ids, response_mask, generator=None) -> LossBreakdown:
        return joint_loss(self.transformer, self.encode, latents, prompt_ids, input_ids, response_mask, self.mask_id,
                          self.loss, self.text_noise, generator)


class Progress:
    """Step counter, data position and metric history: checkpointed with the model."""

    def __init__(self):
        self.step, self.data_state, self.history = 0, {}, []

    def state_dict(self) -> dict:
        return {"step": self.step, "data_state": self.data_state, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.data_state, self.history = state["step"], state["data_state"], state["history"]


def _latent_pool(cfg: TrainConfig, vae, accelerator: Accelerator, out: Path):
    """Encode the Shapes-World latent pool once (main process), cached in the run folder for resumes
    (or in ``data.latent_pool_cache``, which an earlier stage may have written)."""
    path = Path(cfg.data.latent_pool_cache) if cfg.data.latent_pool_cache else out / "latent_pool.pt"
    if accelerator.is_main_process and not path.is_file():
        encode = lambda pixels: encode_latents(vae, pixels.to(accelerator.device, vae.dtype))
        scenes, latents, shaded = latent_pool(cfg.data, cfg.seed, encode)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"scenes": [repr(s) for s in scenes], "latents": latents, "shaded": shaded,
                    "color_jitter": cfg.data.color_jitter}, path)
    accelerator.wait_for_everyone()
    saved = torch.load(path, weights_only=True)
    scenes = latent_pool_scenes(cfg.data, cfg.seed)
    if ([repr(s) for s in scenes] != saved["scenes"][:len(scenes)]  # a larger pool's first scenes are this one
            or saved.get("color_jitter", 0.0) != cfg.data.color_jitter):
        raise ValueError(f"{path} was made with other data settings or a smaller pool "
                         f"({len(saved['scenes'])} scenes, {len(scenes)} wanted); delete it to re-encode.")
    shaded = saved.get("shaded", torch.zeros(len(saved["scenes"]), dtype=torch.bool))  # older caches: none
    return scenes, saved["latents"][:len(scenes)], shaded[:len(scenes)]


def _new_window() -> dict:
    return {"loss_image": [], "loss_text": [], "time": 0.0, "samples": 0, "steps": 0}


def _seed(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:7], "little")


@dataclass
class Run:
    """Everything a training run holds between steps."""

    cfg: TrainConfig
    out: Path
    accelerator: Accelerator
    parts: dict
    defaults: TaskDefaults
    objective: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_schedule: object
    trained: list
    ema: EMAModel
    progress: Progress
    source: object


def setup(cfg: TrainConfig, resume: bool = False) -> Run:
    """Components, optimizer (AdamW, warm-up then ``optim.lr_schedule``), EMA and data; restored from the latest
    checkpoint when ``resume``."""
    out = Path(cfg.output_dir)
    # in every process, before anything is built: each one writes its RNG state into the checkpoints, and
    # all fail alike (none is left waiting for a main process that stopped)
    check_output_dir(out)
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),  # several CPU processes then form a gloo group (MULTI_CPU)
        mixed_precision=cfg.optim.mixed_precision, gradient_accumulation_steps=cfg.optim.grad_accum,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(cfg.seed)  # identical initial weights in every process
    parts = build_components(cfg.model, cfg.data)
    if cfg.image_solver:  # sampling only: the training objective never uses the scheduler
        parts["scheduler"] = flow_scheduler(**cfg.image_solver)
    if cfg.lora.enabled:  # before the optimizer and EMA, which then hold the adapters only
        add_lora(parts, cfg.lora, cfg.model.train_text_encoder)
    tokenizer, vae = parts["tokenizer"], parts["vae"].eval().requires_grad_(False).to(accelerator.device)
    objective = JointObjective(parts["transformer"], parts["text_encoder"], mask_token_id(tokenizer), cfg.loss)
    configure(accelerator, objective, cfg)  # FSDP (also on CPUs), DeepSpeed's batch settings
    o = cfg.optim
    groups = _param_groups(cfg, parts)
    # the size is known only now; still before the first step, so a full disk never costs a run's work
    check_free_space(out, checkpoint_bytes(objective, [p for g in groups for p in g["params"]]))
    if accelerator.is_main_process:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    optimizer = build_adamw(groups, o.lr, o.betas, accelerator.device)
    # accelerate steps a prepared schedule once per process for each optimizer step, hence the factor
    lr_schedule = get_scheduler(o.lr_schedule, optimizer, num_warmup_steps=o.warmup_steps * accelerator.num_processes,
                                num_training_steps=o.max_steps * accelerator.num_processes)
    objective, optimizer, lr_schedule = accelerator.prepare(objective, optimizer, lr_schedule)
    trained = [p for g in optimizer.param_groups for p in g["params"]]  # FSDP's sharded ones replace the originals
    ema, progress = EMAModel(trained, decay=o.ema_decay, foreach=True), Progress()
    register_checkpointing(accelerator, ema, optimizer)  # first: the EMA keeps slot 0 of earlier checkpoints
    accelerator.register_for_checkpointing(progress)
    defaults = TaskDefaults.from_dict(cfg.sampling_defaults())
    pool = _latent_pool(cfg, vae, accelerator, out) if cfg.data.kind == "shapes_world" and cfg.data.latent_pool else None
    source = make_source(cfg.data, defaults, cfg.seed, accelerator.process_index, accelerator.num_processes, pool)
    run = Run(cfg, out, accelerator, parts, defaults, objective, optimizer, lr_schedule, trained, ema, progress, source)
    if resume:
        _resume(run)
    return run


def _resume(run: Run) -> None:
    """Restore the latest complete checkpoint; unfinished ones are removed, and ``metrics.jsonl`` is cut back
    to the checkpoint's history (records logged after it are logged again as the steps are redone)."""
    accelerator, out = run.accelerator, run.out
    if accelerator.is_main_process:
        remove_partial(out)
    checkpoint = latest_checkpoint(out)
    if checkpoint is None:
        raise FileNotFoundError(f"--resume: no complete checkpoint under {out / 'checkpoints'}")
    accelerator.load_state(str(checkpoint))
    run.source.load_state(run.progress.data_state)
    if accelerator.is_main_process:
        _rewrite_jsonl(out / "metrics.jsonl", run.progress.history)
    accelerator.print(f"resumed from {checkpoint} at step {run.progress.step}")


def _rewrite_jsonl(path: Path, records: list[dict]) -> None:
    """Replace ``path`` by ``records``, one JSON line each, atomically (a kill keeps the old file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(partial, path)


def _param_groups(cfg: TrainConfig, parts: dict) -> list[dict]:
    """The transformer's parameters, then what trains of the text encoder (frozen rows must not decay);
    with LoRA, the adapters of each (``add_lora`` froze everything else)."""
    if cfg.lora.enabled:
        trained = [(parts[name], [p for p in parts[name].parameters() if p.requires_grad], cfg.optim.weight_decay)
                   for name in ("transformer", "text_encoder")]
        return param_groups(trained, cfg.optim.decay_all)
    te_params = text_encoder_params(parts["text_encoder"], parts["tokenizer"], cfg.model.train_text_encoder)
    te_decay = cfg.optim.weight_decay if cfg.model.train_text_encoder == "all" else 0.0
    trained = [(parts["transformer"], list(parts["transformer"].parameters()), cfg.optim.weight_decay),
               (parts["text_encoder"], te_params, te_decay)]
    return param_groups(trained, cfg.optim.decay_all)


def _batch_inputs(run: Run, micro: int) -> tuple:
    """(latents, prompt_ids, input_ids, response_mask) of micro-step ``micro``, on the device."""
    size = run.cfg.optim.batch_size
    image_rows = task_rows(size, run.cfg.loss.image_fraction)[0].stop  # all rows when every row does both tasks
    batch = collate(run.source.examples(micro, size, image_rows), run.parts["tokenizer"], run.cfg.data)
    device, vae = run.accelerator.device, run.parts["vae"]
    if batch.latents is None:
        with torch.no_grad():
            latents = encode_latents(vae, batch.pixels.to(device, vae.dtype)).float()
    else:
        latents = batch.latents.to(device)
    return (latents, *(t.to(device) for t in (batch.prompt_ids, batch.input_ids, batch.response_mask)))


def train_step(run: Run, window: dict, flops_per_step: float | None) -> float:
    """One optimizer step (``grad_accum`` micro-steps); returns FLOPs per step (measured on the first call)."""
    o, accelerator, step = run.cfg.optim, run.accelerator, run.progress.step
    start = time.perf_counter()
    for k in range(o.grad_accum):
        micro = step * o.grad_accum + k
        inputs = _batch_inputs(run, micro)
        make_generator = lambda: torch.Generator().manual_seed(_seed(run.cfg.seed, accelerator.process_index, micro))
        if flops_per_step is None:
            flops_per_step = _count_flops(accelerator, run.objective, inputs, make_generator()) * o.grad_accum
        with accelerator.accumulate(run.objective):
            with accelerator.autocast():
                loss = run.objective(*inputs, make_generator())
            accelerator.backward(loss.total)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(clip_order(accelerator, run.objective, run.trained), o.grad_clip)
            run.optimizer.step()
            run.lr_schedule.step()
            run.optimizer.zero_grad(set_to_none=True)
        window["loss_image"].append(loss.image.item())
        window["loss_text"].append(loss.text.item())
    run.ema.step(run.trained)
    run.progress.step = step + 1
    run.progress.data_state = run.source.state()
    window["time"] += time.perf_counter() - start
    window["steps"] += 1
    window["samples"] += o.batch_size * o.grad_accum * accelerator.num_processes
    return flops_per_step


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train as ``cfg`` says; returns the saved pipeline folder."""
    run = setup(cfg, resume)
    accelerator, progress, log, o = run.accelerator, run.progress, cfg.log, cfg.optim
    main = accelerator.is_main_process
    peak = reporting.measure_matmul_peak(torch.bfloat16 if o.mixed_precision == "bf16" else torch.float32,
                                         device=accelerator.device)
    accelerator.print(f"matmul peak on this machine: {peak / 1e9:.0f} GFLOP/s; params: transformer "
                      f"{sum(p.numel() for p in run.parts['transformer'].parameters()) / 1e6:.2f}M, "
                      f"trained {sum(p.numel() for p in run.trained) / 1e6:.3f}M")
    flops_per_step, window = None, _new_window()
    prompts = sample_prompts(cfg.data, cfg.log.sample_prompts) if main else []
    bar = tqdm(total=o.max_steps, initial=progress.step, disable=not main, desc="train", dynamic_ncols=True)
    run.objective.train()
    if cfg.model.train_text_encoder != "all":
        run.parts["text_encoder"].eval()  # a frozen (pretrained) encoder runs without dropout
    while progress.step < o.max_steps:
        flops_per_step = train_step(run, window, flops_per_step)
        bar.update()
        if progress.step % log.log_every == 0 or progress.step == o.max_steps:
            record = _log_record(progress.step, window, flops_per_step, peak, run.lr_schedule.get_last_lr()[0])
            progress.history.append(record)
            bar.set_postfix(img=f"{record['loss_image']:.4f}", txt=f"{record['loss_text']:.3f}",
                            sps=f"{record['samples_per_s']:.0f}", mfu=f"{record['mfu']:.2f}")
            if main:
                reporting.append_jsonl(run.out / "metrics.jsonl", record)
                reporting.plot_losses(progress.history, run.out / "loss.png")
            window = _new_window()
        if progress.step % log.checkpoint_every == 0 or progress.step == o.max_steps:
            save_checkpoint(accelerator, run.out, progress.step, log.keep_checkpoints)
        if progress.step % log.sample_every == 0 or progress.step == o.max_steps:
            # every process: under FSDP the EMA weights are gathered from all of them; the main one samples
            with ema_parts(accelerator, run.parts, run.objective, run.ema, run.trained) as parts:
                if parts is not None:
                    _write_samples(parts, run.defaults, prompts, run.out / "samples" / f"step_{progress.step:06d}.png")
    bar.close()
    return _finish(run)


def _finish(run: Run) -> Path:
    """Save the EMA weights as a pipeline folder (main process), with the config that made it; a LoRA run
    saves its adapters alone into ``lora/`` first, then merges them into the pipeline's weights."""
    run.accelerator.wait_for_everyone()
    folder = run.out / "pipeline"
    # every process: under FSDP the EMA weights are gathered from all of them into full copies
    parts = final_parts(run.accelerator, run.parts, run.objective, run.ema, run.trained)
    if run.accelerator.is_main_process:
        pipe = DualDiffusionPipeline(**parts, task_defaults=run.defaults.to_dict())
        if run.cfg.lora.enabled:
            path = save_lora_weights(run.out / "lora", {name: parts[name] for name in COMPONENTS})
            run.accelerator.print(f"saved LoRA adapters ({path.stat().st_size / 1e6:.2f} MB) to {path}")
            pipe.fuse_lora()
            pipe.unload_lora_weights()  # plain layers holding the merged weights: an ordinary pipeline folder
        pipe.save_pretrained(folder)
        shutil.copy(run.out / "config.yaml", folder / "train_config.yaml")
        run.accelerator.print(f"saved pipeline (EMA weights) to {folder}")
    run.accelerator.end_training()
    return folder


def _count_flops(accelerator: Accelerator, objective, inputs: tuple, generator) -> float:
    """FLOPs of one forward + backward, measured on a throw-away pass (gradients discarded), so that
    the counted pass's attention kernel never touches the trained weights (resume stays exact)."""
    with throwaway_pass(accelerator, objective), reporting.FlopCount() as counter:
        with accelerator.autocast():
            loss = objective(*inputs, generator)
        loss.total.backward()
    objective.zero_grad(set_to_none=True)
    return counter.total


def _log_record(step: int, window: dict, flops_per_step: float | None, peak: float, lr: float) -> dict:
    """Averages over the window since the last log; FLOP/s and MFU are per process."""
    n = max(1, len(window["loss_image"]))
    seconds = max(window["time"], 1e-9)
    flops_per_s = (flops_per_step or 0.0) * window["steps"] / seconds
    return {
        "step": step, "loss_image": sum(window["loss_image"]) / n, "loss_text": sum(window["loss_text"]) / n,
        "lr": lr, "samples_per_s": window["samples"] / seconds, "gflops_per_s": flops_per_s / 1e9,
        "mfu": flops_per_s / peak,
    }


@contextlib.contextmanager
def _eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """``modules`` in eval mode for a while; afterwards every submodule has its own train / eval mode back (a
    frozen text encoder stays in eval mode beside a training transformer, whatever mode that one is in)."""
    modes = {m: m.training for module in modules for m in module.modules()}
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():  # parents before their submodules: ``train`` sets a whole subtree
            if m.training != training:
                m.train(training)


@torch.no_grad()
def _write_samples(parts: dict, defaults: TaskDefaults, prompts: list[str], path: Path) -> None:
    """Generated images for fixed prompts, each captioned by the model itself (every component in eval mode;
    each gets its own mode back afterwards)."""
    with _eval_mode(*(part for part in parts.values() if isinstance(part, torch.nn.Module))):
        pipe = DualDiffusionPipeline(**parts, task_defaults=defaults.to_dict())
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(0)
        images = pipe(prompts, generator=generator).images
        captions = pipe.caption(images, generator=generator).text
        titles = [f"{p}\n-> {c}" for p, c in zip(prompts, captions)]
        reporting.sample_grid(images, titles, path)
