"""Master side of hybridserve."""
