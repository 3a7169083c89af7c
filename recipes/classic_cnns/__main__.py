"""`python -m recipes.classic_cnns`: trains one classic CNN on the digits (see the package)."""

import sys

from recipes.classic_cnns import main
from recipes.common import cli

if __name__ == "__main__":
    sys.exit(cli.run(main))
