"""compression distortions (being written)."""
