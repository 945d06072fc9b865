"""The one exception type that the command line turns into a clear one-line error."""


class ConfigError(ValueError):
    """A problem with user input (flags, presets, env ids, model directories).

    The message is a single line that names the problem and how to fix it.
    """
