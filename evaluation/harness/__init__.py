"""What every benchmark command shares: options, settings, items and images, the resumable predictions store,
seeded batches, tables, and the run itself (``run_task``)."""

from .errors import DataError
from .items import Item
from .runner import Task, command_main, run_command, run_task

__all__ = ["DataError", "Item", "Task", "command_main", "run_command", "run_task"]
