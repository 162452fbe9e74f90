"""``python -m artgan`` is the same as the ``artgan`` command."""

from artgan.cli import main

main()
