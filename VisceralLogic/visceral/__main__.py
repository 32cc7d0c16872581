"""``python -m visceral`` runs the command line."""

import sys

from visceral.cli import main

sys.exit(main())
