"""``python -m opennmes`` runs the ``nmes`` command."""

from opennmes.cli import main

main()
