"""`python -m service.cli`: what `serve` starts its workers with, and what tests run."""

import sys

from service.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
