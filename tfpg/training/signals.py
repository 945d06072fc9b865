"""SIGINT/SIGTERM turned into a flag: the current update finishes, then the run ends cleanly. A second signal
aborts at once (KeyboardInterrupt): the run may be stuck in a user's env or an evaluation episode that never ends."""
from __future__ import annotations

import signal


class StopSignals:
    """While active (a context manager), SIGINT and SIGTERM set `received` instead of raising.

    Outside the main thread (e.g. a test driving the trainer from a thread) signals cannot be
    caught; the run then only stops on its own criteria."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def _on_signal(self, signum, frame) -> None:
        if self.received is not None:   # the second: stop waiting for the iteration to end
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice")
        self.received = signum

    def __enter__(self) -> StopSignals:
        for sig in self.SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
