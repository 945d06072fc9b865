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


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. non-finite updates K times in a row); one line for the user."""


class EnvFailure(TrainingError):
    """The env raised in reset()/step(), or returned a non-finite observation or reward, while tfpg stepped it; the
    line names the env, what happened and the env step (the training loop adds where the run can resume from)."""
