"""The one error tree of recsuite.

Every failure a user can cause or meet is a :class:`SuiteError`; only ``suite.cli`` turns one into a
one-line message and an exit code::

    SuiteError                      exit 1   a run or command failed
    ├── ConfigError                 exit 2   bad option, bad value, unknown name
    │   ├── UnknownNameError                 a model, backend, scenario... that does not exist
    │   └── ResultExistsError                the run folder exists and --overwrite was not given
    ├── DatasetError                exit 2   malformed or missing input data
    ├── BackendUnavailableError     exit 2   the backend cannot run here (no CUDA, missing package)
    ├── BackendError                exit 1   a backend failed while loading or predicting
    ├── HarnessError                exit 1   LoadGen refused settings or the harness broke
    ├── RunFailedError              exit 1   the run finished but is invalid (errors recorded)
    ├── RunInterrupted              exit 130 SIGINT stopped the run (143: SIGTERM; 128 + the signal)
    ├── RefusedError                exit 1   a command refused to write its output (findings in details)
    └── RecordError                 exit 2   a result file is not a regular file, too large, or breaks the record format
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class SuiteError(Exception):
    """Base of every error recsuite raises on purpose."""

    exit_code: ClassVar[int] = 1


class ConfigError(SuiteError):
    """An option or configuration value is wrong."""

    exit_code = 2


class UnknownNameError(ConfigError):
    """A name (model, backend, scenario, profile...) that is not one of the known choices."""

    def __init__(self, what: str, got: object, choices: Iterable[str]) -> None:
        self.what = what
        self.got = got
        self.choices = sorted(choices)
        super().__init__(f"{what!r} must be one of {self.choices} (got {got!r})")


class ResultExistsError(ConfigError):
    """The run folder already holds a result and ``--overwrite`` was not given."""


class DatasetError(SuiteError):
    """Input data is malformed, missing or does not fit the model."""

    exit_code = 2


class BackendUnavailableError(SuiteError):
    """The requested backend cannot run on this machine."""

    exit_code = 2


class BackendError(SuiteError):
    """A backend failed while loading or predicting."""


class HarnessError(SuiteError):
    """LoadGen refused the settings, or the harness itself failed."""


class RunFailedError(SuiteError):
    """The run completed but is invalid; LoadGen's logs were kept and marked invalid."""


class RunInterrupted(SuiteError):
    """SIGINT or SIGTERM stopped a run; the exit code is 128 + the signal (130, 143), as a shell's.

    Attributes:
        signum: the signal.
        loadgen_running: LoadGen's test had not ended when the harness gave up waiting for it. Its
            threads still call into Python and its SUT and QSL must not be destroyed, so the
            process has to leave with ``os._exit`` (the CLI does) instead of returning to the
            interpreter's shutdown.
        outcome: what the harness completed (``suite.harness.Outcome``), when it got that far.
    """

    def __init__(self, message: str, *, signum: int, loadgen_running: bool = False, outcome: Any = None) -> None:
        super().__init__(message)
        self.signum = signum
        self.loadgen_running = loadgen_running
        self.outcome = outcome

    @property  # type: ignore[override]  # a property over the base class's plain attribute: the code follows the signal
    def exit_code(self) -> int:
        return 128 + self.signum


class RefusedError(SuiteError):
    """A command refused to write its output and wrote nothing; ``details`` says why at length
    (e.g. the findings table of ``suite check``), printed before the one-line message."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def one_of(what: str, got: object, choices: Iterable[str]) -> None:
    """Raise :class:`UnknownNameError` unless ``got`` is in ``choices``."""
    choices = list(choices)
    if got not in choices:
        raise UnknownNameError(what, got, choices)


class RecordError(SuiteError):
    """A result folder's file cannot be read safely, or its record breaks the format (``suite.record``).

    ``problems`` holds one ``(field path, problem)`` per fault; the field path ``""`` means the file
    itself (not a regular file, over its size cap, not JSON, nested too deep).
    """

    exit_code = 2

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (("", message),)
