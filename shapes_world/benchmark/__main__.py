"""``python -m shapes_world.benchmark``: see ``cli.py``."""

from .cli import main

main()
