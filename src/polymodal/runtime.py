"""Process-level runtime settings shared by every layer (imports nothing from polymodal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Restore torch's thread count on exit: libraries on the same OpenMP runtime
    (CTranslate2 under faster-whisper) set the process-wide count when they load,
    which would leave every later torch computation of the process on their count.
    """
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread: these models are too small to gain from more, and
    on a shared CPU extra threads only wait for each other.

    The previous thread count is restored on exit, also after an exception.
    """
    import torch

    with torch_threads_kept():
        torch.set_num_threads(1)
        yield
