"""sharpness distortions (being written)."""
