"""An app whose module refuses to import the way real settings modules do: sys.exit(reason)."""

from __future__ import annotations

import sys

sys.exit("DATABASE_URL is not set")
