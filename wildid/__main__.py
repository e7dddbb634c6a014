"""``python -m wildid`` is the same as the ``wildid`` command."""

from __future__ import annotations

import sys

from wildid.cli import main

sys.exit(main())
