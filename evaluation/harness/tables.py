"""Plain-text tables for the printed results."""

from __future__ import annotations


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns right-aligned (the first left-aligned), a rule under the header."""
    cells = [header] + rows
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def number(value: float | None, digits: int = 2) -> str:
    """A value with ``digits`` decimals, or "-" for None."""
    return "-" if value is None else f"{value:.{digits}f}"
