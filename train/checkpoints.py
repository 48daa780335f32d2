"""A run's checkpoints, written whole or not at all, and a run folder checked before any training.

A checkpoint is written into ``checkpoints/step_N.partial`` and renamed to ``checkpoints/step_N`` only once
every process has written its files and they are flushed to disk. A run killed mid-write therefore leaves
a ``.partial`` folder, which ``checkpoints()`` never lists (so ``--resume`` never picks it) and which the
next save or resume removes.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from accelerate import Accelerator

logger = logging.getLogger(__name__)

PARTIAL = ".partial"  # suffix of a checkpoint folder being written (or being deleted)
_COMPLETE = re.compile(r"step_(\d+)")  # the only names a finished checkpoint has


class OutputFolderError(ValueError):
    """The run folder cannot hold the run: it cannot be created or written, or its disk is too full."""


def checkpoints(output_dir: Path) -> list[Path]:
    """The run's complete checkpoint folders, oldest step first."""
    folder = Path(output_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _COMPLETE.fullmatch(p.name) and p.is_dir()]
    return sorted(found, key=lambda p: int(_COMPLETE.fullmatch(p.name).group(1)))


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The complete checkpoint of the highest step, or None."""
    found = checkpoints(output_dir)
    return found[-1] if found else None


def remove_partial(output_dir: Path) -> list[Path]:
    """Delete the unfinished checkpoint folders an interrupted run left behind; returns them."""
    folder = Path(output_dir) / "checkpoints"
    stale = sorted(folder.glob(f"*{PARTIAL}")) if folder.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        logger.warning("removed %d unfinished checkpoint folder(s) left by an interrupted run: %s",
                       len(stale), ", ".join(str(p) for p in stale))
    return stale


def save_checkpoint(accelerator: Accelerator, out: Path, step: int, keep: int) -> Path:
    """Save the accelerate state as ``checkpoints/step_{step}``, atomically; keep the newest ``keep``.

    Every process must call this: each writes its own RNG state and ``save_state`` may synchronise.
    Only the main process removes, renames and prunes folders.
    """
    final = Path(out) / "checkpoints" / f"step_{step}"
    partial = final.with_name(final.name + PARTIAL)
    if accelerator.is_main_process:
        remove_partial(out)  # a leftover of this very step would otherwise mix old files with new ones
    accelerator.wait_for_everyone()  # no process writes into a folder that is being removed
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # the folder is complete only when every process has written its part
    if accelerator.is_main_process:
        _sync_tree(partial)
        _discard(final)  # a same-step checkpoint of an earlier run in this folder
        os.replace(partial, final)  # the commit point: before it, no resume sees this checkpoint
        _fsync(final.parent)
        for old in checkpoints(out)[:-keep]:  # keep 0: keep all
            _discard(old)
    return final


def _discard(path: Path) -> None:
    """Remove a checkpoint folder; renamed to a partial name first, so that a kill mid-delete leaves a folder
    that no resume picks and the next save removes, never a half-deleted ``step_N``."""
    if not path.exists():
        return
    doomed = path.with_name(path.name + PARTIAL)
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _sync_tree(folder: Path) -> None:
    """Flush every file under ``folder``, then the folders, so a rename never outlives its contents
    (neither safetensors nor torch.save fsync)."""
    for path in sorted(folder.rglob("*"), key=lambda p: p.is_dir()):
        _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some systems cannot open a folder for fsync (Windows); the data is still written
        return
    try:
        os.fsync(fd)
    except OSError:  # a filesystem without fsync on folders: nothing more can be done
        pass
    finally:
        os.close(fd)


def check_output_dir(out: Path) -> None:
    """Create the run folder and prove it writable, or raise ``OutputFolderError`` naming it and the reason."""
    out = Path(out)
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        where = "it is a file" if blocker == out else f"{blocker} is a file"
        raise OutputFolderError(f"output folder {out} cannot be created: {where}, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputFolderError(f"output folder {out} cannot be created: {err.strerror or err}") from None
    try:  # a folder can exist and still refuse files (permissions, a read-only mount)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write_test_"):
            pass
    except OSError as err:
        raise OutputFolderError(f"output folder {out} is not writable: {err.strerror or err}") from None


def checkpoint_bytes(model: torch.nn.Module, trained: list[torch.Tensor]) -> int:
    """About the size of one checkpoint: the model's weights, plus AdamW's two moments and the EMA copy
    of every trained parameter."""
    size = lambda tensors: sum(t.numel() * t.element_size() for t in tensors)
    return size(model.state_dict().values()) + 3 * size(trained)


def check_free_space(out: Path, needed: int) -> None:
    """Raise ``OutputFolderError`` if the run folder's disk has less than ``needed`` bytes free."""
    free = shutil.disk_usage(out).free
    if free < needed:
        raise OutputFolderError(f"output folder {out} has {_size(free)} free, but one checkpoint needs "
                                f"about {_size(needed)}; free some space or choose another --output_dir")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
