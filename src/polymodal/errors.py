"""Errors that say what is wrong and how to fix it.

Every error about the user's input (a config, a data file, a command-line value)
is a :class:`PolymodalError`; the ``polymodal`` command prints it as one line and
exits with code 2, while any other exception is a bug and keeps its traceback.
Each subclasses ``ValueError`` so callers that already catch bad input keep working.
"""


class PolymodalError(ValueError):
    """Bad input to polymodal: the message names the problem and how to fix it."""


class DataError(PolymodalError):
    """A sample, batch, file or folder does not satisfy the data contract."""


class ConfigError(PolymodalError):
    """An experiment config or argument is malformed: unknown key, wrong type, bad value."""
