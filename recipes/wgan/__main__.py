"""`python -m recipes.wgan`: runs the recipe (see recipes/wgan/__init__.py)."""

import sys

from recipes.common import cli
from recipes.wgan import main

sys.exit(cli.run(main))
