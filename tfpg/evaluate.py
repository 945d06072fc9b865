"""`python -m tfpg.evaluate`: the evaluation command line, `tfpg.cli.evaluate`."""
import sys

from tfpg.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
