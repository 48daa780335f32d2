"""The exact settings of a run: printed at the start and saved as ``settings.json`` beside the results.

A rerun into the same folder resumes only with the same settings: predictions made with another model, seed,
batch size, sampler or data are never mixed in. ``--limit``, ``--device`` and the number of processes may change
between runs (a run of several processes records ``processes``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .errors import DataError

SETTINGS_FILE = "settings.json"
MAY_CHANGE = ("limit", "device", "items", "processes")  # a resumed run may differ in these


def build_settings(args: argparse.Namespace, benchmark: str, pipe, options: dict, data: dict,
                   n_items: int, n_total: int) -> dict[str, Any]:
    """Everything that decides the predictions, plus the run's size."""
    return {
        "benchmark": benchmark,
        "model": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model,
        "model_defaults": pipe.defaults.to_dict(),
        "options": options,
        "seed": args.seed,
        "batch": args.batch,
        "limit": args.limit,
        "device": str(pipe.device),
        "data": {name: _resolved(value) for name, value in data.items()},
        "items": {"run": n_items, "in_data": n_total},
    }


def describe(settings: dict[str, Any]) -> str:
    """The settings as printed at the start of a run."""
    return "settings:\n" + json.dumps(settings, indent=2)


def save_settings(out: Path, settings: dict[str, Any], resuming: bool) -> None:
    """Write ``settings.json``; when resuming, first check that the stored predictions were made the same way."""
    check_settings(out, settings, resuming)
    write_settings(out, settings)


def write_settings(out: Path, settings: dict[str, Any]) -> None:
    """Write ``settings.json`` (after ``check_settings``)."""
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def check_settings(out: Path, settings: dict[str, Any], resuming: bool) -> None:
    """When resuming, raise :class:`DataError` unless the stored predictions were made with ``settings``. Reads
    only: every process of a run checks, the main process writes."""
    path = out / SETTINGS_FILE
    if resuming and path.exists():
        try:
            before = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise DataError(f"{path}: not valid JSON; move the folder away to start afresh") from None
        changed = [k for k in sorted(set(before) | set(settings))
                   if k not in MAY_CHANGE and before.get(k) != settings.get(k)]
        if changed:
            raise DataError(f"{path}: the predictions in {out} were made with other settings "
                            f"({', '.join(changed)} differ); use another --out, or the same settings to resume")


def _resolved(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, (list, tuple)):
        return [_resolved(v) for v in value]
    return value
