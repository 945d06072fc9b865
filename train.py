#!/usr/bin/env python
"""Train a tfpg agent: `python train.py --help` lists every flag with its default."""
import sys

from tfpg.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
