"""``python -m arniqa.cli``: the ``arniqa`` command."""

from . import main

main()
