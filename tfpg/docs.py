"""`python -m tfpg.docs`: regenerates the generated tables, `tfpg.cli.docs`."""
import sys

from tfpg.cli.docs import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
