"""CLI verbs: train (being written)."""
