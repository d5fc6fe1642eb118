"""CLI verbs: evaluate (being written)."""
