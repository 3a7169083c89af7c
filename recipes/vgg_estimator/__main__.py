"""`python -m recipes.vgg_estimator`: the Estimator facade on A 5.3 and 6.2 (see the package)."""

import sys

from recipes.common import cli
from recipes.vgg_estimator import main

if __name__ == "__main__":
    sys.exit(cli.run(main))
