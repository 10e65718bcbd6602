"""``python -m nbcvm`` is the ``nbcvm`` command."""

import sys

from nbcvm.cli import main

sys.exit(main())
