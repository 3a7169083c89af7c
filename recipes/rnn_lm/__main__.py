"""`python -m recipes.rnn_lm`: see `recipes.rnn_lm`."""

import sys

from recipes.common import cli
from recipes.rnn_lm import main

sys.exit(cli.run(main))
