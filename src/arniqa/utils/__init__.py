"""Process-level helpers every layer may use: atomic file writes (``files``); the output lock (``locks``); the cache:
its folder, entries named by digest, one maker at a time, pruning (``cache``); the JSON writer and reader
(``jsonfile``); file names and records in text files (``textfiles``); named pipes, devices and this process's
descriptors named by a path (``streams``); devices and autocast, telling memory running out from other errors, the
machine, the git commit, malloc settings and how a command stops on a signal (``runtime``); the rich consoles that
print names as they are (``console``); the one-line ``error:`` and ``warning:`` messages (``messages``); the "did you
mean" of errors about names (``names``). Imports only constants from arniqa (the exit status of Ctrl-C); torch
lazily."""
