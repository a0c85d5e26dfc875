"""``python -m badlab``: see badlab.cli."""

import sys

from badlab.cli import main

sys.exit(main())
