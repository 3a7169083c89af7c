"""`python -m recipes.photo_style`: runs the recipe (see recipes/photo_style/__init__.py)."""

import sys

from recipes.common import cli
from recipes.photo_style import main

sys.exit(cli.run(main))
