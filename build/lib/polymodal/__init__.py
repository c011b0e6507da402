"""polymodal: a PyTorch toolkit for multimodal learning.

Importing the package is cheap (no torch import): submodules load on demand.
"""

__version__ = "0.1.0"
