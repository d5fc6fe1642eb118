from faults import tiny_model  # noqa: F401  (the fixture)
