"""``python -m flipnet`` runs the flipnet command line."""

import sys

from .cli import main

sys.exit(main())
