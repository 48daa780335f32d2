"""Finding a pipeline folder and reading its ``model_index.json``, without torch (the app reads a model's defaults
to draw its page while the weights load)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .bundled import NAME as BUNDLED
from .bundled import bundled_model_path
from .task_defaults import RELEASED_TASK_DEFAULTS

logger = logging.getLogger(__name__)

COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
RELEASED_TRANSFORMER_CLASS = "SD3JointModelFlexible"
# what a pipeline folder's loading reads: configs, safetensors weights (and their shard index), tokenizer files and
# the mask embedding; not pickles, training checkpoints or notebooks a Hub repository may also hold
HUB_FILES = ("model_index.json", "*/*.json", "*/*.safetensors", "*/*.model", "*/*.txt", "mask_*")


def resolve_folder(path: str | Path) -> Path:
    """A local pipeline folder, ``"ddit-shapes"`` (the bundled model), or a Hub id fetched with ``huggingface_hub``
    (needs network; only the files a pipeline reads are downloaded, see ``HUB_FILES``)."""
    folder = Path(path)
    if str(path) == BUNDLED and not folder.exists():
        folder = bundled_model_path()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise FileNotFoundError(f"{folder} is not a pipeline folder: it has no model_index.json.")
        return folder
    if folder.exists() or str(path).count("/") != 1:
        raise FileNotFoundError(f"Model folder not found: {path}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(path), allow_patterns=list(HUB_FILES)))
    except Exception as err:  # offline, no such repository, no access: say so in one line
        detail = " ".join(str(err).split())[:200]
        raise ModelFolderError(f"{path}: no such local folder, and the Hub could not provide it ({detail})") from None


class ModelFolderError(ValueError):
    """A model folder that cannot be opened; the message is one line naming the file and what is wrong."""


def read_index(folder: Path) -> dict:
    """``model_index.json`` as a dict naming every component, or a one-line error naming the file."""
    path = folder / "model_index.json"
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFolderError(f"{path} is not valid JSON ({err}); restore it from the model's source") from None
    if not isinstance(index, dict):
        raise ModelFolderError(f"{path} must hold a JSON object, not {type(index).__name__}")
    missing = [name for name in COMPONENTS if not isinstance(index.get(name), list)]
    if missing:
        raise ModelFolderError(f"{path} lacks components: {', '.join(missing)}")
    return index


def saved_defaults(index: dict) -> dict:
    """The folder's ``task_defaults``; for a released D-DiT folder (none saved), the authors' settings."""
    if "task_defaults" in index:
        return dict(index["task_defaults"] or {})
    if index["transformer"][-1] == RELEASED_TRANSFORMER_CLASS:
        logger.info("A released D-DiT folder: sampling with the authors' settings (RELEASED_TASK_DEFAULTS)")
        return RELEASED_TASK_DEFAULTS.to_dict()
    return {}
