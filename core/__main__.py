"""`python -m core VERB ...`: CNN Studio's one command line (see `core.cli`)."""
import sys

from core.cli import main

sys.exit(main())
