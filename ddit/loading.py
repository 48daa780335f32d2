"""Opening pipeline folders: ours, the released D-DiT checkpoints, and SD3 pipelines to start from.

The released folders name their transformer ``SD3JointModelFlexible`` from a module of the authors'
(docs/design.md §3.1), which diffusers cannot import; every folder's transformer is therefore loaded as
:class:`DualDiffusionTransformer` and the other four components by the class ``model_index.json`` names.
An optional sixth, ``preview_decoder`` (a small ``AutoencoderTiny``), is loaded when the index names it.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file

from .latents import check_preview_decoder
from .task_defaults import combine
from .model_folder import COMPONENTS, ModelFolderError, read_index, resolve_folder, saved_defaults
from .text_layout import mask_token_id
from .transformer import DualDiffusionTransformer

logger = logging.getLogger(__name__)

PREVIEW_DECODER = "preview_decoder"  # the optional sixth: a small AutoencoderTiny for step previews
MASK_EMBEDDING_NAMES = ("mask_embedding.safetensors", "mask_token_embedding.safetensors", "mask_embedding.pt",
                        "mask_token_embedding.pt", "mask_token_emb.00-of-01.pth")  # the last: the authors' own file


def default_device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """CUDA with bf16 when present, else CPU with fp32."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


# the libraries whose classes a pipeline folder may name: importing a module runs its code, so nothing else is
# imported on a folder's say-so
COMPONENT_LIBRARIES = ("diffusers", "transformers", "ddit")


def _component_class(index_path: Path, name: str, entry: list):
    """The class ``model_index.json`` names for component ``name``, e.g. ["transformers", "T5EncoderModel"]; a
    library outside ``COMPONENT_LIBRARIES`` is refused before anything is imported."""
    library, class_name = ([None, None] + list(entry))[-2:]
    if not isinstance(library, str) or library.split(".")[0] not in COMPONENT_LIBRARIES:
        raise ModelFolderError(f"{index_path}: the {name} names {library!r} as its library; a pipeline folder may "
                               f"name classes from {', '.join(COMPONENT_LIBRARIES)} only")
    try:
        return getattr(importlib.import_module(library), class_name)
    except (ImportError, AttributeError, TypeError) as err:
        raise ModelFolderError(f"{index_path}: cannot import {library}.{class_name} named for the {name}: "
                               f"{err}") from None


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _load_component(folder: Path, name: str, load, what: str | None = None):
    """``load()``, with any failure turned into one line naming the component's folder (and its weights);
    ``what`` names the component in the message (default: ``name``)."""
    path, what = folder / name, what or name
    if not path.is_dir():
        raise ModelFolderError(f"{path}: the {what} folder is missing")
    weights = sorted(f.name for f in path.iterdir() if f.suffix in PICKLE_SUFFIXES + (".safetensors",))
    if weights and not any(w.endswith(".safetensors") for w in weights):
        raise ModelFolderError(f"{path}: only pickle weights ({', '.join(weights)}); ddit loads safetensors only "
                               "(pickle files can run code): convert them with save_pretrained")
    try:
        return load()
    except Exception as err:  # any library's failure: truncated or wrong-shape weights, a bad config, ...
        detail = " ".join(str(err).split())[:300] or type(err).__name__
        named = f" ({', '.join(weights)})" if weights else ""
        raise ModelFolderError(f"{path}{named}: cannot load the {what}: {detail}") from None


def load_pipeline(cls, pretrained_model_name_or_path: str | Path, torch_dtype: torch.dtype | None = None,
                  device: str | torch.device | None = None, mask_embedding: str | Path | None = None,
                  task_defaults: dict | None = None, preview_decoder=None):
    """Load a D-DiT pipeline folder (ours or the released layout) onto ``device`` in ``torch_dtype``.

    Defaults: CUDA + bf16 when available, else CPU + fp32. ``mask_embedding`` is a file with a trained
    mask-token embedding (one row) that replaces that row of the text encoder's input embeddings; a
    file named like ``mask_embedding.safetensors`` (or the authors' ``mask_token_emb.00-of-01.pth``) in the
    folder is used when not given. ``task_defaults`` overrides the saved sampling defaults; a released D-DiT
    folder, which saves none, opens with the authors' settings (``RELEASED_TASK_DEFAULTS``).
    ``preview_decoder`` (an ``AutoencoderTiny``, or a folder holding one, e.g. a copy of TAESD3 for SD3 latents)
    decodes the app's step previews; default: the folder's own ``preview_decoder`` when it has one, else none.
    """
    folder = resolve_folder(pretrained_model_name_or_path)
    index = read_index(folder)
    default_device, default_dtype = default_device_and_dtype()
    device = torch.device(device) if device is not None else default_device
    dtype = torch_dtype or (default_dtype if device.type == "cuda" else torch.float32)

    parts = {"transformer": _load_component(folder, "transformer", lambda: DualDiffusionTransformer.from_pretrained(
        folder / "transformer", torch_dtype=dtype))}
    for name in COMPONENTS[1:]:
        component_cls = _component_class(folder / "model_index.json", name, index[name])
        kwargs = {"torch_dtype": dtype} if name in ("vae", "text_encoder") else {}
        parts[name] = _load_component(folder, name, lambda: component_cls.from_pretrained(folder / name, **kwargs))
    _load_mask_embedding(parts["text_encoder"], parts["tokenizer"], folder, mask_embedding)
    defaults = combine(saved_defaults(index), task_defaults)
    preview = _load_preview_decoder(folder, index, preview_decoder, dtype, parts["vae"])
    return cls(**parts, task_defaults=defaults, preview_decoder=preview).to(device)


def _load_preview_decoder(folder: Path, index: dict, given, dtype: torch.dtype, vae):
    """The optional preview decoder: ``given`` (a module, or a folder holding an ``AutoencoderTiny``), else the one
    the folder's model_index.json names (``[null, null]`` when saved without one), else None."""
    if given is not None and not isinstance(given, (str, Path)):
        return given
    if given is not None:
        from diffusers import AutoencoderTiny

        path, component_cls = Path(given), AutoencoderTiny
        if not path.is_dir():
            raise FileNotFoundError(f"Preview decoder folder not found: {path}")
    else:
        entry = index.get(PREVIEW_DECODER)
        if not isinstance(entry, list) or entry[-1] is None:
            return None
        path, component_cls = folder / PREVIEW_DECODER, _component_class(folder / "model_index.json",
                                                                       PREVIEW_DECODER, entry)
    decoder = _load_component(path.parent, path.name, lambda: component_cls.from_pretrained(path, torch_dtype=dtype),
                              what=PREVIEW_DECODER.replace("_", " "))
    try:
        check_preview_decoder(vae, decoder)
    except ValueError as err:
        raise ModelFolderError(f"{path}: {err}") from None
    return decoder


def _load_mask_embedding(text_encoder, tokenizer, folder: Path, path: str | Path | None) -> None:
    if path is None:
        path = next((folder / n for n in MASK_EMBEDDING_NAMES if (folder / n).is_file()), None)
        if path is None:
            return
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Mask embedding file not found: {path}")
    try:  # a plain tensor or a one-entry dict; torch.load with weights_only runs no pickled code
        row = next(iter(load_file(path).values())) if path.suffix == ".safetensors" else \
            torch.load(path, map_location="cpu", weights_only=True)
        row = next(iter(row.values())) if isinstance(row, dict) else row
    except Exception as err:
        raise ModelFolderError(f"{path}: cannot read the mask embedding: {' '.join(str(err).split())[:200]}") from None
    table = text_encoder.get_input_embeddings().weight
    row = row.reshape(-1)
    if row.numel() != table.shape[1]:
        raise ModelFolderError(f"{path}: the mask embedding has {row.numel()} values, the text encoder's rows have "
                               f"{table.shape[1]}")
    with torch.no_grad():
        table[mask_token_id(tokenizer)] = row.to(table.dtype)
    logger.info("Loaded the mask-token embedding from %s", path)


def load_sd3_components(pretrained_model_name_or_path: str | Path, torch_dtype: torch.dtype = torch.float32) -> dict:
    """Components for a new D-DiT from a diffusers SD3 pipeline folder (paper stage 1).

    The transformer is built by :meth:`DualDiffusionTransformer.from_sd3` (copying every shared weight and
    printing the report); SD3's T5 (``text_encoder_3``/``tokenizer_3``, pad = EOS as in the released D-DiT),
    VAE and scheduler are reused; SD3's two CLIP encoders are not needed.
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from transformers import T5EncoderModel, T5TokenizerFast

    folder = resolve_folder(pretrained_model_name_or_path)
    text_encoder = T5EncoderModel.from_pretrained(folder / "text_encoder_3", torch_dtype=torch_dtype)
    tokenizer = T5TokenizerFast.from_pretrained(folder / "tokenizer_3")
    tokenizer.pad_token = tokenizer.eos_token
    sd3 = SD3Transformer2DModel.from_pretrained(folder / "transformer", torch_dtype=torch_dtype)
    transformer, _ = DualDiffusionTransformer.from_sd3(sd3, vocab_size=text_encoder.config.vocab_size,
                                                       mask_token_id=mask_token_id(tokenizer))
    return {
        "transformer": transformer.to(torch_dtype),
        "vae": AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch_dtype),
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler"),
    }
