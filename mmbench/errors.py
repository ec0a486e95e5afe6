"""User-facing errors: the CLI prints them as one line and exits non-zero, never a traceback."""


class MMBenchError(Exception):
    """A problem the user can fix (bad input, missing data, unknown name); message is one line."""


class DataError(MMBenchError):
    """Missing, corrupt or inconsistent dataset files."""


class ConfigError(MMBenchError):
    """Malformed `--set` value, unknown config key, or values that do not fit together."""


class PluginError(MMBenchError):
    """A registered model or dataset that fails to import or breaks the API contract."""


class TrainingError(MMBenchError):
    """Training cannot go on (e.g. a non-finite loss); finished checkpoints are kept."""
