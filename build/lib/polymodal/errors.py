"""Errors that say what is wrong and how to fix it.

Each subclasses ``ValueError`` so callers that already catch bad input keep working.
"""


class DataError(ValueError):
    """A sample, batch, file or folder does not satisfy the data contract."""


class ConfigError(ValueError):
    """An experiment config is malformed: unknown key, wrong type, missing value."""
