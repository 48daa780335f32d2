"""``python -m ddit``: the same as the ``ddit`` command."""

from .cli import entry

entry()
