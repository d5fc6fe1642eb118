"""color distortions (being written)."""
