"""train.py on a disk that is full: every checkpoint write, or every export, fails with ENOSPC.

    python benchmarks/full_disk.py checkpoint|export [train.py flags...]

For benchmarks/bad_inputs.py, which shows what such a run ends with (one line, exit 1, the previous
checkpoint and export untouched). tfpg has no hook for this: the script replaces
`tf.train.Checkpoint.write` or `tf.saved_model.save` with a function that raises
OSError(ENOSPC), as a full disk would, then runs the normal command line.
"""
import errno
import os
import sys

from tfpg.cli import train as cli
from tfpg.core.quiet import import_tensorflow


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def run(what: str, argv: list[str]) -> int:
    import_tensorflow()
    import tensorflow as tf

    if what == "checkpoint":
        tf.train.Checkpoint.write = _no_space
    elif what == "export":
        tf.saved_model.save = _no_space
    else:
        raise SystemExit(f"full_disk.py: the first argument is checkpoint or export, not {what!r}")
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
