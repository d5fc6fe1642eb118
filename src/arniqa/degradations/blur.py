"""blur distortions (being written)."""
