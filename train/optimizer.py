"""AdamW over what trains, in parameter groups that say where weight decay applies.

nanoGPT's ``configure_optimizers`` rule: matrices decay; norms, biases and embeddings (1-d tensors,
``nn.Embedding`` tables, and what a model lists in ``no_weight_decay()``) do not. ``decay_all`` puts every
weight under decay instead (the bundled model's earlier recipes did; its current one, train/configs/shapes_world.yaml,
sets ``decay_all: false``).
"""

from __future__ import annotations

import torch
from torch import nn


def _no_decay_names(module: nn.Module) -> set[str]:
    names = set(getattr(module, "no_weight_decay", lambda: set())())
    for prefix, child in module.named_modules():
        if isinstance(child, nn.Embedding):
            names.add(f"{prefix}.weight" if prefix else "weight")
    return names


def split_decay(module: nn.Module, params: list[nn.Parameter]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``params`` of ``module`` as (decayed, not decayed), each in ``module``'s parameter order."""
    wanted = {id(p) for p in params}
    skip = _no_decay_names(module)
    decayed, plain = [], []
    for name, p in module.named_parameters():
        if id(p) in wanted:
            (plain if p.ndim < 2 or name in skip else decayed).append(p)
    return decayed, plain


def param_groups(trained: list[tuple[nn.Module, list[nn.Parameter], float]], decay_all: bool) -> list[dict]:
    """AdamW groups for ``(module, its trained parameters, weight decay)`` triples; empty groups are left out."""
    groups = []
    for module, params, weight_decay in trained:
        if decay_all or weight_decay == 0:
            groups.append({"params": params, "weight_decay": weight_decay})
            continue
        decayed, plain = split_decay(module, params)
        groups += [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_adamw(groups: list[dict], lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.AdamW:
    """AdamW; on the CPU fused (one kernel over all tensors; the default there loops over them)."""
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True if device.type == "cpu" else None)
