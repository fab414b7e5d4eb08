"""``python -m deepvideo`` (and ``torchrun -m deepvideo``): the ``deepvideo`` command."""

import sys

from deepvideo.cli import main

sys.exit(main())
