"""``python -m polymodal.cli``: the same as the ``polymodal`` command."""

import sys

from polymodal.cli import main

sys.exit(main())
