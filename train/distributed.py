"""What the loop needs beyond accelerate to train sharded (FSDP) or with DeepSpeed, and to test it on CPUs.

Launch with a config of ``train/configs/accelerate/`` (DDP, FSDP, DeepSpeed ZeRO-2; README "Training at scale").
- FSDP on CPUs: accelerate (1.15) turns FSDP on only for accelerators (``AcceleratorState`` sets it under
  MULTI_GPU/XPU/...); on CPUs it silently runs DDP instead. Torch's FSDP2 (``fully_shard``) runs on CPU gloo
  meshes, so when the launch asks for FSDP on CPUs we set accelerate's state to FSDP ourselves: CPU runs
  (the tests) then go through the same accelerate FSDP2 code as GPU runs.
- DeepSpeed on CPUs: accelerate ignores it there too (``Accelerator(cpu=True)``: DDP); refused instead.
- Under FSDP the EMA's shadow weights are DTensor shards like the parameters they follow. accelerate saves
  registered objects from the main process only, so their shards go through ``torch.distributed.checkpoint``
  (every process writes its own, like the model's); sample grids and the final pipeline gather the full
  weights into plain copies on the main process. Also: AdamW state for every parameter before a sharded save,
  parameters in the model's order for clipping, and a synced FLOP-count pass (see each function).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import torch
from accelerate import Accelerator
from accelerate.state import PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
from diffusers.training_utils import EMAModel

from .config import TrainConfig

EMA_SHARDS = "ema_shards"  # folder in a checkpoint holding the EMA's shards under FSDP
# the blocks each FSDP unit holds (a name the model lacks is left out): the transformer's, BERT's (new text
# encoders), T5's (SD3 and released models)
WRAP_CLASSES = ("JointTransformerBlock", "BertLayer", "T5Block")


def _asked(name: str) -> bool:
    return os.environ.get(name, "false").lower() == "true"


def is_sharded(accelerator: Accelerator) -> bool:
    """Whether parameters are sharded across processes (FSDP), so that no process holds the full weights."""
    return accelerator.distributed_type == DistributedType.FSDP


def configure(accelerator: Accelerator, objective: torch.nn.Module, cfg: TrainConfig) -> None:
    """Before ``accelerator.prepare``: FSDP on CPUs and its shard units, DeepSpeed's batch settings; refuse
    what would not run as asked."""
    if _asked("ACCELERATE_USE_DEEPSPEED") and accelerator.distributed_type != DistributedType.DEEPSPEED:
        raise ValueError("DeepSpeed was asked for, but accelerate does not run it on CPUs (it would run DDP "
                         "instead); on CPUs launch with train/configs/accelerate/ddp.yaml or fsdp.yaml")
    if _asked("ACCELERATE_USE_FSDP") and accelerator.distributed_type == DistributedType.MULTI_CPU:
        accelerator.state.fsdp_plugin = FullyShardedDataParallelPlugin()  # reads the launch's FSDP_* settings
        # both states, as accelerate does for GPUs (each AcceleratorState() copies the PartialState's over)
        accelerator.state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    if is_sharded(accelerator):
        if cfg.model.train_text_encoder == "mask_embedding":  # its gradient hook sits on a tensor FSDP replaces
            raise ValueError("model.train_text_encoder 'mask_embedding' does not run under FSDP; use DDP")
        if getattr(getattr(cfg, "lora", None), "enabled", False):  # refused now, not when saving at the end
            raise ValueError("lora does not run under FSDP (the final save rebuilds plain modules, without "
                             "adapters); use DDP, where only the adapters carry optimizer and EMA state")
        present = {type(m).__name__ for m in objective.modules()}
        # accelerate's TRANSFORMER_BASED_WRAP reads the classes from the model it wraps
        objective._no_split_modules = [c for c in WRAP_CLASSES if c in present]
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # accelerate takes the batch size from a prepared DataLoader (this loop prepares none); DeepSpeed clips
        # by itself, so the training config's clipping goes there
        o = cfg.optim
        accelerator.state.deepspeed_plugin.deepspeed_config.update(
            train_micro_batch_size_per_gpu=o.batch_size, gradient_accumulation_steps=o.grad_accum,
            gradient_clipping=o.grad_clip)


def clip_order(accelerator: Accelerator, objective: torch.nn.Module, trained: list) -> list:
    """``trained`` for ``accelerator.clip_grad_norm_``: under FSDP in the model's order, because accelerate
    compares the list with ``model.parameters()``, and ``==`` between DTensors of other shapes raises."""
    if not is_sharded(accelerator):
        return trained
    ids = {id(p) for p in trained}
    return [p for p in objective.parameters() if id(p) in ids]


def throwaway_pass(accelerator: Accelerator, objective: torch.nn.Module):
    """The context for a backward whose gradients are then discarded (the FLOP count): no gradient sync,
    except under FSDP, which keeps unsynced gradients aside and adds them into the next synced backward
    (``zero_grad`` does not reach them), so there the pass syncs and its gradients are dropped like any."""
    return contextlib.nullcontext() if is_sharded(accelerator) else accelerator.no_sync(objective)


class ShardedEMA:
    """The EMA in checkpoints when its shadow weights are DTensor shards: scalars in the custom-object file,
    shards written and read by every process with ``torch.distributed.checkpoint`` (accelerate's hooks)."""

    def __init__(self, ema: EMAModel):
        self.ema = ema

    def _tensors(self) -> dict:
        return {f"shadow.{i}": p for i, p in enumerate(self.ema.shadow_params)}

    def state_dict(self) -> dict:
        return {k: v for k, v in self.ema.state_dict().items() if k != "shadow_params"}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict({**state, "shadow_params": self.ema.shadow_params})  # loaded in place by load()

    def save(self, models, weights, output_dir: str) -> None:
        import torch.distributed.checkpoint as dcp

        dcp.save(self._tensors(), checkpoint_id=Path(output_dir) / EMA_SHARDS)

    def load(self, models, input_dir: str) -> None:
        import torch.distributed.checkpoint as dcp

        dcp.load(self._tensors(), checkpoint_id=Path(input_dir) / EMA_SHARDS)  # into the shards, in place


def fill_adamw_state(optimizer: torch.optim.Optimizer) -> None:
    """Give every parameter AdamW's initial state now (step 0, zero moments: the same updates as none). A
    parameter that has had no gradient yet (``null_image_embd`` before any image-less row) would have none in a
    checkpoint, and accelerate's sharded optimizer load wants one for every parameter ("Missing key in
    checkpoint state_dict: optimizer.state.transformer.null_image_embd.step")."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    if not isinstance(optimizer, torch.optim.AdamW):
        return
    for group in optimizer.param_groups:
        on_device = group.get("fused") or group.get("capturable")  # where AdamW itself keeps the step
        for p in group["params"]:
            if not optimizer.state[p]:
                state = {"step": torch.zeros((), dtype=torch.float32, device=p.device if on_device else "cpu"),
                         "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                if group.get("amsgrad"):
                    state["max_exp_avg_sq"] = torch.zeros_like(p)
                optimizer.state[p] = state


def register_checkpointing(accelerator: Accelerator, ema: EMAModel, optimizer: torch.optim.Optimizer) -> None:
    """Checkpoint the EMA with the run: as it is, or in shards under FSDP (the same custom-object slot); under
    FSDP the optimizer's state is complete from the start."""
    if not is_sharded(accelerator):
        accelerator.register_for_checkpointing(ema)
        return
    fill_adamw_state(optimizer)  # before any save: accelerate saves the optimizer before running save hooks
    sharded = ShardedEMA(ema)
    accelerator.register_for_checkpointing(sharded)
    accelerator.register_save_state_pre_hook(sharded.save)
    accelerator.register_load_state_pre_hook(sharded.load)


def final_parts(accelerator: Accelerator, parts: dict, objective: torch.nn.Module, ema: EMAModel,
                trained: list) -> dict | None:
    """The components with the EMA weights in, on the main process (None on the others); every process calls.
    Unsharded: ``parts`` themselves, the EMA copied into them (as for the final save). Under FSDP: new full
    copies of the trained modules (gathering them is collective), the training modules untouched."""
    main = accelerator.is_main_process
    if not is_sharded(accelerator):
        if main:
            ema.copy_to(trained)
        return parts if main else None
    # the model's weights, then the EMA's over the trained ones (the EMA's foreach copies have no DTensor rule)
    names = {id(p): name for name, p in objective.named_parameters()}
    state = accelerator.get_state_dict(objective)  # collective: full tensors, on the main process's CPU
    for param, shadow in zip(trained, ema.shadow_params):
        full = shadow.full_tensor()  # collective, one tensor at a time
        if main:
            state[names[id(param)]] = full.cpu()
    return _unsharded(parts, state, parts["vae"].device) if main else None


@contextlib.contextmanager
def ema_parts(accelerator: Accelerator, parts: dict, objective: torch.nn.Module, ema: EMAModel,
              trained: list) -> Iterator[dict | None]:
    """``final_parts`` for a moment (a sample grid mid-run): the trained weights are back afterwards."""
    stored = accelerator.is_main_process and not is_sharded(accelerator)
    if stored:
        ema.store(trained)
    try:
        yield final_parts(accelerator, parts, objective, ema, trained)
    finally:
        if stored:
            ema.restore(trained)


def _unsharded(parts: dict, state: dict, device: torch.device) -> dict:
    """``parts`` with plain copies of the transformer and text encoder holding ``state`` (JointObjective keys)."""
    from torch.distributed.fsdp import FSDPModule

    out = dict(parts)
    for name in ("transformer", "text_encoder"):
        module = parts[name]
        cls = next(c for c in type(module).__mro__ if not issubclass(c, FSDPModule))  # fully_shard subclasses
        copy = cls.from_config(module.config) if hasattr(cls, "from_config") else cls(module.config)
        own = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        dtype = next(module.parameters()).dtype
        copy = copy.to(device) if dtype == next(copy.parameters()).dtype else copy.to(device, dtype)
        copy.load_state_dict(own)  # strict: a key left out or extra is an error, not a silent random weight
        out[name] = copy
    return out
