"""`python -m recipes.pix2pix`: runs the recipe (see recipes/pix2pix/__init__.py)."""

import sys

from recipes.common import cli
from recipes.pix2pix import main

sys.exit(cli.run(main))
