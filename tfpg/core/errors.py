"""The exception types that the command line turns into a clear one-line error.

ConfigError: bad user input or damaged files (exit 2). SaveError: a write failed for an outside reason.
"""


class ConfigError(ValueError):
    """A problem with user input (flags, presets, env ids, model directories).

    The message is a single line that names the problem and how to fix it.
    """


class SaveError(RuntimeError):
    """A checkpoint or export could not be written for an outside reason (disk full, read-only folder).

    The previous checkpoint/export is left untouched; the message is a single line that names the
    cause and the last good checkpoint or export.
    """


def one_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (an OSError's strerror, e.g. 'No space left on device')."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = (getattr(error, "message", None) or str(error)).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
