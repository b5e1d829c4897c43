"""Worker side of hybridserve."""
