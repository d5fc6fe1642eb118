"""spatial distortions (being written)."""
