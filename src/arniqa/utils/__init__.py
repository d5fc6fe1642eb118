"""Process-level helpers every layer may use: atomic file writes and the JSON writer (``files``); devices and
autocast, the machine, the git commit and malloc settings (``runtime``). Imports nothing from arniqa; torch
lazily."""
