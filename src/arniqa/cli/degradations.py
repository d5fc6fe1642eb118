"""CLI verbs of the degradation model: distortions, distort, gallery (being written)."""
