"""train.py with checkpoint writes slowed down and announced, for the SIGKILL tests.

    python tests/slow_writes.py DELAY [train.py flags...]

Prints "tfpg-test: checkpoint data written" once a checkpoint's data files are on disk, sleeps
DELAY seconds, points the checkpoint state file at it, then prints "tfpg-test: checkpoint state
updated": the test kills the process inside or after that window. Production code has no hook:
this wraps `TrainingCheckpoint._point_to`, the step between the two writes.
"""
import sys
import time

from tfpg.core import checkpoint




from tfpg.cli import train as cli
def run(delay: float, argv: list[str]) -> int:
    point_to = checkpoint.TrainingCheckpoint._point_to

    def slow_point_to(self, prefix):
        print(f"tfpg-test: checkpoint data written {prefix}", flush=True)
        time.sleep(delay)
        point_to(self, prefix)
        print(f"tfpg-test: checkpoint state updated {prefix}", flush=True)

    checkpoint.TrainingCheckpoint._point_to = slow_point_to
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(run(float(sys.argv[1]), sys.argv[2:]))
