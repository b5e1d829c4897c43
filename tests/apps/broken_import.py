"""A module whose import fails: the server must say so once and exit 3."""

raise RuntimeError("this module refuses to import")
