"""``python -m deepvideo.cli``: the same as the ``deepvideo`` command."""

import sys

from deepvideo.cli import main

sys.exit(main())
