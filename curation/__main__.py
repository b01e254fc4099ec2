"""``python -m curation``: the ``curate`` command (also what ``accelerate launch -m curation train ...`` runs)."""

from curation.cli.app import main

if __name__ == "__main__":
    main()
