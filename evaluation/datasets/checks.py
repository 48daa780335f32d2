"""Checks the readers share: image file names from patterns, ground truth present for all items or none."""

from __future__ import annotations

from ..harness.errors import DataError
from ..harness.items import Item, some_ids


def image_name(pattern: str, where: str, **fields) -> str:
    """``pattern`` filled in with ``fields`` ({image_id}, {subtype}); a pattern that does not fit is a DataError."""
    try:
        return pattern.format(**fields)
    except (KeyError, IndexError, ValueError) as err:
        known = ", ".join("{" + k + "}" for k in fields)
        raise DataError(f"{where}: --image-pattern {pattern!r} does not fit ({type(err).__name__}: {err}); "
                        f"it may use {known}") from None


def truth_for_all_or_none(items: list[Item], where: str, what: str) -> None:
    """Raise DataError when some items have ground truth and others do not (a mixed split)."""
    lacking = [item.key for item in items if item.truth is None]
    if lacking and len(lacking) < len(items):
        raise DataError(f"{where}: {len(lacking)} of {len(items)} items have no {what} ({some_ids(lacking)})")
