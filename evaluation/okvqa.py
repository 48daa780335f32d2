"""``python -m evaluation.okvqa --model M --out DIR --questions Q.json --annotations A.json --images DIR``:
OK-VQA, whose files have VQAv2's format (COCO val2014 images); scored the same way."""

from __future__ import annotations

from . import vqav2


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what ``results.json`` holds."""
    return vqav2.main(argv, name="okvqa", title="OK-VQA")


if __name__ == "__main__":
    main()
