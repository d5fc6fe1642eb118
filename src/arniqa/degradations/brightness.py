"""brightness distortions (being written)."""
