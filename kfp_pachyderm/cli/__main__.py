"""``python -m kfp_pachyderm.cli``."""

import sys

from kfp_pachyderm.cli.main import main

sys.exit(main())
