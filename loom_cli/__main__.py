"""Entry point for `python -m loom_cli` and the `loom` console script."""

from loom_cli.app import main

if __name__ == "__main__":
    main()
