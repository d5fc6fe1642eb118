"""CLI verbs: score (being written)."""
