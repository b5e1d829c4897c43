"""``python -m hybridserve`` is the ``hybridserve`` command."""

from hybridserve.cli import main

if __name__ == "__main__":
    main()
