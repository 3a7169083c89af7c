"""`python -m recipes.char_rnn`: see `recipes.char_rnn`."""

import sys

from recipes.char_rnn import main
from recipes.common import cli

sys.exit(cli.run(main))
