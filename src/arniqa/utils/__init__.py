"""Process-level helpers every layer may use: atomic file writes, output locks, the cache folder and the JSON writer
(``files``); devices and
autocast, the machine, the git commit and malloc settings (``runtime``); the rich consoles that print names as
they are (``console``); the one-line ``error:`` and ``warning:`` messages (``messages``); the "did you mean" of
errors about names (``names``). Imports only constants from
arniqa (the exit status of Ctrl-C); torch lazily."""
