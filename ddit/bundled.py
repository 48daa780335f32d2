"""Where the bundled Shapes-World model lives: inside an installed package, or in a clone's ``assets/``.

No torch here: the CLI names it in ``--help``.
"""

from __future__ import annotations

from pathlib import Path

NAME = "ddit-shapes"  # what ``from_pretrained`` resolves to the bundled model
INSTALLED = Path(__file__).resolve().parent / "bundled"  # ``pip install .`` copies assets/ddit-shapes here
CLONE = Path(__file__).resolve().parent.parent / "assets" / NAME


def bundled_model_path() -> Path:
    """The bundled model's folder: the installed copy when there is one, else the clone's."""
    return INSTALLED if (INSTALLED / "model_index.json").is_file() else CLONE
