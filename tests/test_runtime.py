"""Runtime settings: single_threaded restores the thread count it found."""

from __future__ import annotations

import pytest
import torch

from polymodal.runtime import single_threaded, torch_threads_kept


def test_single_threaded_runs_on_one_thread_and_restores_the_count() -> None:
    before = torch.get_num_threads()
    with single_threaded():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_single_threaded_restores_the_count_after_an_error() -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), single_threaded():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_torch_threads_kept_undoes_a_change_made_inside() -> None:
    before = torch.get_num_threads()
    with torch_threads_kept():
        torch.set_num_threads(1)  # as a library on the same OpenMP runtime may do
    assert torch.get_num_threads() == before
