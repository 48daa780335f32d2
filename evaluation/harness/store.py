"""The resumable predictions store: one JSON line per item, appended as each batch finishes.

A killed run loses at most the batch in flight; a rerun reads the file, skips the items already there and
appends the rest. A line cut short by a kill (no final newline) is dropped when the file is opened again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import DataError

PREDICTIONS_FILE = "predictions.jsonl"


class PredictionStore:
    """``{"key": ..., "prediction": ...}`` lines in ``path``; ``load`` reads them, ``append`` adds a batch."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        """Every stored prediction by key (a repeated key keeps its first prediction)."""
        if not self.path.exists():
            return {}
        self._drop_partial_line()
        found: dict[str, Any] = {}
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
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
        text = "".join(json.dumps({"key": k, "prediction": p}, ensure_ascii=False) + "\n"
                       for k, p in predictions.items())
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def _drop_partial_line(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
