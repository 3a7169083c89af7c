"""`python -m recipes.image_captioning`: see `recipes.image_captioning`."""

import sys

from recipes.common import cli
from recipes.image_captioning import main

sys.exit(cli.run(main))
