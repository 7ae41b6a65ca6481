"""``python -m flipnet.cli`` runs the flipnet command line (as ``python -m flipnet``)."""

import sys

from . import main

sys.exit(main())
