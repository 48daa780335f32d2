"""The resumable predictions store: one JSON line per item, appended as each batch finishes.

A killed run loses at most the batch in flight; a rerun reads the file, skips the items already there and
appends the rest. A line cut short by a kill (no final newline) is ignored when read, and dropped when the file
is opened again for appending.

A run of N processes (``accelerate launch --num_processes N``) has each process append to its own
``predictions.rank{r}.jsonl``; the main process then merges every file into ``predictions.jsonl`` (in the
data's order, one line per item). A rerun, with any number of processes, skips what any of the files holds.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from .errors import DataError

PREDICTIONS_FILE = "predictions.jsonl"
SHARD_FILE = re.compile(r"predictions\.rank(\d+)\.jsonl")


def shard_file(rank: int) -> str:
    """The name of process ``rank``'s predictions file in a multi-process run."""
    return f"predictions.rank{rank}.jsonl"


def shard_paths(out: Path) -> list[Path]:
    """The per-process predictions files in ``out``, by rank."""
    found = [(int(m.group(1)), p) for p in Path(out).glob("predictions.rank*.jsonl")
             if (m := SHARD_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def stored_predictions(out: Path) -> dict[str, Any]:
    """Every prediction in ``out``: ``predictions.jsonl`` and the per-process files (a key stored twice keeps its
    first prediction). Reads only: a line cut short is skipped, not removed, so every process may call it."""
    found: dict[str, Any] = {}
    for path in [Path(out) / PREDICTIONS_FILE, *shard_paths(out)]:
        for key, prediction in PredictionStore(path).read().items():
            found.setdefault(key, prediction)
    return found


def merge_predictions(out: Path, order: Iterable[str]) -> dict[str, Any]:
    """Rewrite ``predictions.jsonl`` as every stored prediction, once each: the keys of ``order`` first, in that
    order, then any others as found. Written to a temporary file and renamed: a kill leaves the old file whole."""
    found = stored_predictions(out)
    ordered = {key: found[key] for key in order if key in found}
    ordered.update((key, prediction) for key, prediction in found.items() if key not in ordered)
    path = Path(out) / PREDICTIONS_FILE
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        f.write(_lines(ordered))
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    return ordered


def _lines(predictions: dict[str, Any]) -> str:
    return "".join(json.dumps({"key": k, "prediction": p}, ensure_ascii=False) + "\n" for k, p in predictions.items())


class PredictionStore:
    """``{"key": ..., "prediction": ...}`` lines in ``path``; ``load`` reads them, ``append`` adds a batch."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        """Every stored prediction by key (a repeated key keeps its first prediction); a last line cut short by a
        kill is removed from the file, ready for ``append``."""
        if self.path.exists():
            self._drop_partial_line()
        return self.read()

    def read(self) -> dict[str, Any]:
        """What ``load`` returns, leaving the file as it is (a last line cut short is skipped)."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        data = data[:data.rfind(b"\n") + 1]  # without a final newline the last line was cut short
        found: dict[str, Any] = {}
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key, prediction = record["key"], record["prediction"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{self.path}: line {number} is not a stored prediction; "
                                "move the file away to start afresh") from None
            found.setdefault(str(key), prediction)
        return found

    def append(self, predictions: dict[str, Any]) -> None:
        """Add one batch's predictions in one write, flushed to disk before returning."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(_lines(predictions))
            f.flush()
            os.fsync(f.fileno())

    def _drop_partial_line(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
