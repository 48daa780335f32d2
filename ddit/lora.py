"""LoRA adapters (peft) on a pipeline's transformer and text encoder: add for training, save, load, fuse.

The file is diffusers' LoRA format, ``pytorch_lora_weights.safetensors``: peft's adapter tensors, each key
prefixed by its component (``transformer.transformer_blocks.0.attn.to_q.lora_A.weight``,
``text_encoder.encoder.layer.0.attention.self.query.lora_B.weight``), and each component's settings (``r``,
``lora_alpha``, ``lora_dropout``, ``target_modules``) as JSON under the header key ``lora_adapter_metadata``
(``transformer.r`` and so on), as diffusers' ``save_lora_weights`` writes them.

``peft`` is imported only when an adapter is used, so the rest of the package works without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    import peft

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' file name, so its tools find the file
METADATA_KEY = "lora_adapter_metadata"  # diffusers' header key for the adapters' settings
COMPONENTS = ("transformer", "text_encoder")  # the pipeline components an adapter may sit on
# diffusers' JointTransformerBlock: the image stream's attention projections (to_*) and the text stream's
# (add_*, to_add_out); the LoRA paper's choice, and diffusers' SD3 LoRA script's default
TRANSFORMER_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
# the two streams' feed-forward layers: more capacity (and a larger file) when added to the targets
FEED_FORWARD_TARGETS = ("ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2")
# self-attention of BERT (new models) and of T5 (SD3 and the released models); a name a model lacks matches nothing
TEXT_ENCODER_TARGETS = ("query", "key", "value", "q", "k", "v", "o")
_SETTINGS = ("r", "lora_alpha", "lora_dropout", "target_modules")


def _peft():
    try:
        import peft
    except ImportError:
        raise ImportError("LoRA adapters need peft: pip install peft") from None
    return peft


def lora_config(rank: int, alpha: float, target_modules, dropout: float = 0.0) -> "peft.LoraConfig":
    """A peft ``LoraConfig``; the update is scaled by ``alpha / rank`` and starts at zero (B = 0)."""
    if rank < 1 or alpha <= 0 or not 0 <= dropout < 1:
        raise ValueError(f"LoRA needs rank >= 1, alpha > 0 and 0 <= dropout < 1; got {rank}, {alpha}, {dropout}")
    return _peft().LoraConfig(r=int(rank), lora_alpha=alpha, lora_dropout=dropout,
                              target_modules=list(target_modules))


def add_adapter(module: nn.Module, config: "peft.LoraConfig", adapter_name: str = "default") -> list[nn.Parameter]:
    """Freeze ``module`` and add a trainable adapter with diffusers' or transformers' ``add_adapter``;
    returns the adapter's parameters (the only ones that then require gradients)."""
    module.requires_grad_(False)
    module.add_adapter(config, adapter_name=adapter_name)
    return adapter_parameters(module, adapter_name)


def adapter_parameters(module: nn.Module, adapter_name: str = "default") -> list[nn.Parameter]:
    """The parameters of adapter ``adapter_name`` in ``module``, in module order."""
    return [p for n, p in module.named_parameters() if ".lora_" in n and f".{adapter_name}." in n]


def has_adapter(module: nn.Module, adapter_name: str = "default") -> bool:
    """Whether ``module`` holds an adapter called ``adapter_name``."""
    return adapter_name in (getattr(module, "peft_config", None) or {})


def save_lora_weights(folder: str | Path, components: dict[str, nn.Module], adapter_name: str = "default") -> Path:
    """Write the adapter ``adapter_name`` of those ``components`` (name -> module) that have it into
    ``folder/pytorch_lora_weights.safetensors``; returns the file."""
    from safetensors.torch import save_file

    peft = _peft()
    tensors, settings = {}, {}
    for prefix, module in components.items():
        if module is None or not has_adapter(module, adapter_name):
            continue
        state = peft.get_peft_model_state_dict(module, adapter_name=adapter_name)
        tensors.update({f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in state.items()})
        config = module.peft_config[adapter_name].to_dict()
        config["target_modules"] = sorted(config["target_modules"])  # a set in peft; JSON wants a list
        settings.update({f"{prefix}.{k}": config[k] for k in _SETTINGS})
    if not tensors:
        raise ValueError(f"no component has a LoRA adapter named {adapter_name!r}")
    path = Path(folder) / LORA_WEIGHT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata={"format": "pt", METADATA_KEY: json.dumps(settings, sort_keys=True)})
    return path


def read_lora_weights(path: str | Path) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """``{component: (tensors without the prefix, settings)}`` from a LoRA file or a folder holding one;
    ``FileNotFoundError`` / ``ValueError`` with one line saying what is wrong."""
    from safetensors import safe_open

    path = Path(path)
    file = path / LORA_WEIGHT_NAME if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no LoRA weights at {path} (a {LORA_WEIGHT_NAME} file or a folder holding one)")
    try:
        with safe_open(str(file), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            header = f.metadata() or {}
        settings = json.loads(header.get(METADATA_KEY) or "{}")
    except Exception as err:  # safetensors raises its own error types, JSON a ValueError: one message for all
        raise ValueError(f"{file} is not a LoRA safetensors file: {err}") from None
    found = {}
    for key, tensor in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix not in COMPONENTS or ".lora_" not in rest:
            raise ValueError(f"{file}: unexpected tensor {key!r}; expected {' or '.join(COMPONENTS)} LoRA weights")
        found.setdefault(prefix, ({}, {}))[0][rest] = tensor
    if not found:
        raise ValueError(f"{file} holds no LoRA weights")
    for key, value in settings.items():
        prefix, _, name = key.partition(".")
        if prefix in found:
            found[prefix][1][name] = value
    return found


def load_adapter(module: nn.Module, tensors: dict[str, torch.Tensor], settings: dict,
                 adapter_name: str = "default") -> None:
    """Add adapter ``adapter_name`` to ``module`` on exactly the layers ``tensors`` name, with their weights.

    The rank is the tensors' own; alpha is the file's (diffusers' rule: ``alpha = rank`` when it has none).
    """
    targets = sorted({k.split(".lora_")[0] for k in tensors})  # full module names: nothing else gets an adapter
    rank = int(settings.get("r") or next(t.shape[0] for k, t in tensors.items() if ".lora_A." in k))
    config = lora_config(rank, settings.get("lora_alpha", rank), targets)
    try:
        module.add_adapter(config, adapter_name=adapter_name)
        result = _peft().set_peft_model_state_dict(module, tensors, adapter_name=adapter_name)
    except (RuntimeError, ValueError) as err:  # a missing layer, shapes of another model
        lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [""]
        detail = next((line for line in lines if "mismatch" in line), lines[-1])  # torch lists every tensor
        raise ValueError(f"the LoRA weights do not fit this {type(module).__name__}: {detail}") from None
    missing = [k for k in result.missing_keys if ".lora_" in k and f".{adapter_name}." in k]
    if result.unexpected_keys or missing:
        raise ValueError(f"the LoRA weights do not fit this {type(module).__name__}: "
                         f"unexpected {result.unexpected_keys[:3]}, missing {missing[:3]}")


def remove_adapter(module: nn.Module, adapter_name: str = "default") -> None:
    """Delete adapter ``adapter_name`` from ``module`` (every adapter layer, when it was the only adapter)."""
    config = getattr(module, "peft_config", None) or {}
    if set(config) <= {adapter_name}:
        unload(module)
        return
    for _, layer in _tuner_layers(module):
        layer.delete_adapter(adapter_name)
    config.pop(adapter_name, None)


def _tuner_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, m) for name, m in module.named_modules() if isinstance(m, BaseTunerLayer)]


def fuse(module: nn.Module, adapter_names: list[str] | None = None) -> None:
    """Add the adapters' updates into the base weights (faster sampling; ``unfuse`` takes them out again)."""
    for _, layer in _tuner_layers(module):
        layer.merge(adapter_names=adapter_names)


def unfuse(module: nn.Module) -> None:
    """Take fused adapter updates out of the base weights again."""
    for _, layer in _tuner_layers(module):
        if layer.merged:
            layer.unmerge()


def unload(module: nn.Module) -> None:
    """Remove every adapter layer, keeping the base layers as they are now (with fused updates, if fused)."""
    for name, layer in _tuner_layers(module):
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, child, layer.get_base_layer())
    if hasattr(module, "peft_config"):
        del module.peft_config
    module._hf_peft_config_loaded = False  # diffusers' and transformers' flag: "has adapters"


class LoraMixin:
    """diffusers-style LoRA methods for a pipeline whose ``transformer`` (and ``text_encoder``) take adapters."""

    def _lora_components(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name, None) for name in COMPONENTS if getattr(self, name, None) is not None}

    def load_lora_weights(self, path: str | Path, adapter_name: str = "default") -> None:
        """Load a LoRA file (or a folder holding ``pytorch_lora_weights.safetensors``) onto the transformer and,
        where it has weights for it, the text encoder. Bad files raise ``FileNotFoundError`` / ``ValueError``
        and leave the pipeline unchanged."""
        found = read_lora_weights(path)
        components = self._lora_components()
        absent = sorted(set(found) - set(components))
        if absent:
            raise ValueError(f"{path}: the pipeline has no {', '.join(absent)} for these LoRA weights")
        taken = sorted(name for name in found if has_adapter(components[name], adapter_name))
        if taken:
            raise ValueError(f"an adapter named {adapter_name!r} is already loaded; pass another adapter_name")
        loaded = []
        try:
            for name, (tensors, settings) in found.items():
                loaded.append(components[name])
                load_adapter(components[name], tensors, settings, adapter_name)  # copied onto the module's device
        except ValueError:
            for module in loaded:  # a file that does not fit leaves the pipeline as it was
                remove_adapter(module, adapter_name)
            raise

    def fuse_lora(self, adapter_names: list[str] | None = None) -> None:
        """Merge the loaded adapters into the weights: sampling then costs what the base model's does."""
        for module in self._lora_components().values():
            fuse(module, adapter_names)

    def unfuse_lora(self) -> None:
        """Undo ``fuse_lora`` (the adapters stay loaded)."""
        for module in self._lora_components().values():
            unfuse(module)

    def unload_lora_weights(self) -> None:
        """Remove the adapters: the base model again, or, after ``fuse_lora``, a plain merged model that
        ``save_pretrained`` writes as an ordinary pipeline."""
        for module in self._lora_components().values():
            unload(module)
