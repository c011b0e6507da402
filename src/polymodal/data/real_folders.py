"""Where the real data sets sit in a data folder (``polymodal bench --data DIR``).

The layout is that of the project's shared data: ``fsdd/recordings/`` (FSDD WAV
files) and ``mnist-t10k/`` (MNIST IDX files). Kept free of heavy imports: the
bench reads it when it registers its checks.
"""

from __future__ import annotations

from pathlib import Path


def av_mnist_options(root: Path) -> dict[str, str]:
    """The ``av_mnist`` data options (MNIST and FSDD folders) inside data folder ``root``."""
    return {
        "mnist_folder": str(root / "mnist-t10k"),
        "fsdd_root": str(root / "fsdd" / "recordings"),
    }
