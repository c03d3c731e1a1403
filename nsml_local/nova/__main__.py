"""`python -m nova ...` runs the CLI under the name nova (works without installing the package)."""
import sys

from nsml.cli import main

sys.exit(main(prog='nova'))
