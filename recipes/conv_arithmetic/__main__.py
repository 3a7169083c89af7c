"""`python -m recipes.conv_arithmetic`: D 4's convolution arithmetic (see the package)."""

import sys

from recipes.common import cli
from recipes.conv_arithmetic import main

if __name__ == "__main__":
    sys.exit(cli.run(main))
