"""`python -m tfpg.docs`: regenerates the docs' generated pages and tables (`tfpg.cli.docs`).

This entry point is in the top layer, so it may read `tfpg.layers` (the package's layers, which the Design
page draws) and hand them to the generator in `tfpg.cli`, which may not import them itself.
"""
import sys

from tfpg import layers
from tfpg.cli.docs import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], package_layers=(layers.LAYERS, layers.TOP)))
