"""CLI verbs: benchmark (being written)."""
