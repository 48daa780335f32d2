"""The one exception for bad input."""


class DataError(Exception):
    """Input the user can fix (a file, a field, an item, an option); a command prints it as one line and exits 1.

    The message names the file and the item, e.g. ``questions.json: question 42: image not found: img/42.jpg``.
    """
