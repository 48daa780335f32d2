"""Reading benchmark files (JSON, JSONL) and checking their fields, with errors that name the file and item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import DataError


def read_json(path: str | Path) -> Any:
    """The parsed JSON file at ``path``; a missing or malformed file raises :class:`DataError` naming it."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None


def read_jsonl(path: str | Path) -> list[tuple[int, Any]]:
    """``(line number, parsed object)`` for each non-blank line of a JSON-lines file."""
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {number} is not valid JSON ({err.msg})") from None
    if not records:
        raise DataError(f"{path}: no records (the file is empty)")
    return records


def read_text(path: str | Path) -> str:
    """The text of a file, or :class:`DataError` when it is missing, a folder, or not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def field(record: Any, name: str, kinds: type | tuple[type, ...], where: str) -> Any:
    """``record[name]``, checked to be one of ``kinds``; ``where`` ("file: item") starts the error message."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if name not in record:
        raise DataError(f"{where}: missing field {name!r}")
    value = record[name]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        expected = " or ".join(k.__name__ for k in kinds)
        raise DataError(f"{where}: field {name!r} should be {expected}, got {_short(value)}")
    return value


def text_field(record: Any, name: str, where: str) -> str:
    """A field that must be a non-empty string."""
    value = field(record, name, str, where)
    if not value.strip():
        raise DataError(f"{where}: field {name!r} is empty")
    return value


def one_line(text: str) -> str:
    """Model output as a field of a results file: tabs and newlines as spaces, the ends stripped."""
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ").strip()


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
