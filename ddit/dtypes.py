"""The ``--dtype`` option's names and their torch dtypes, shared by the CLI, the evaluation commands and the app.

Importing this module does not import torch (a command's ``--help`` and argument errors stay light); ``parse_dtype``
imports it when called.
"""

from __future__ import annotations

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
# short spellings accepted too (a Python caller's "bf16", "fp32", "half")
ALIASES = {"fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
DTYPE_HELP = ("weights and compute dtype: float32, bfloat16, float16, or auto (default: bfloat16 on CUDA, "
              "float32 on CPU)")


def parse_dtype(name: str | None):
    """The torch dtype ``name`` names (``"bfloat16"``, ``"bf16"``, ...), or None for ``"auto"``/None, which lets the
    loader choose (bfloat16 on CUDA, float32 on CPU). Anything else is a one-line ``ValueError``."""
    if name is None:
        return None
    key = str(name).strip().lower().removeprefix("torch.")
    key = ALIASES.get(key, key)
    if key not in DTYPE_CHOICES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPE_CHOICES)}")
    if key == "auto":
        return None
    import torch

    return getattr(torch, key)
