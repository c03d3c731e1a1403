"""`python -m nsml ...` runs the CLI (works without installing the package)."""
import sys

from .cli import main

sys.exit(main())
