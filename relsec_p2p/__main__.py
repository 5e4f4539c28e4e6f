"""``python -m relsec_p2p`` runs the ``relsec`` command."""

import sys

from .cli import main

sys.exit(main())
