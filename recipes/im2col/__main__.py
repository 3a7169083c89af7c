"""`python -m recipes.im2col`: A 6.1's im2col example (see the package)."""

import sys

from recipes.common import cli
from recipes.im2col import main

if __name__ == "__main__":
    sys.exit(cli.run(main))
