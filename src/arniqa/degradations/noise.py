"""noise distortions (being written)."""
