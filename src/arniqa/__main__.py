"""``python -m arniqa``: the ``arniqa`` command."""

from .cli import main

main()
