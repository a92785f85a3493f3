"""Strict parsing of the numbers and paths a user gives, checked before anything is loaded or written.

Python's ``int()`` and ``float()`` accept more than a user means: ``int('٣')`` is 3, ``float('nan')``
and ``float('1e999')`` are numbers, ``'²'.isdigit()`` is true. Here a number is ASCII digits (a float
may have a point and an exponent), finite, and inside a stated range; anything else is a
:class:`~suite.errors.ConfigError` in the house form ``'rows' must be ... (got '1e9')``.

:class:`IntRange` and :class:`FloatRange` are click parameter types built on the same checks; their
errors are ``ConfigError`` (not click's usage error), so the CLI prints one line and exits 2.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import click

from suite.errors import ConfigError

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")

#: Bounds of the CLI's numbers: past them a run is meaningless or its work unbounded.
MAX_TARGET_QPS = 1e8  # 300x what LoadGen itself issues on one core (README, "Harness overhead")
MAX_ROWS = 100_000_000  # items in a generated dataset; the default at full scale is 1,048,576
MAX_ROW_CAP = 2**31 - 1  # table rows: ids are int32
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds
MAX_THREADS = 1024
MAX_WORKERS = 1024
MAX_BATCH_ITEMS = 1 << 20
MAX_BATCH_TIMEOUT_US = 10_000_000  # 10 s
MAX_TASKS = 64
MAX_SECONDS = 86_400.0  # one day
#: Queries LoadGen may be asked to generate up front (Offline, Server): about 200 bytes each in
#: LoadGen (2.2M took 1.0 GB, 11M 2.7 GB of RSS in a null Offline run), so about 10 GB.
MAX_LOADGEN_QUERIES = 50_000_000


def _interval(lo: float | None, hi: float | None, lo_open: bool = False) -> str:
    left = "(" if lo_open else "["
    a = "-inf" if lo is None else _num(lo)
    b = "inf" if hi is None else _num(hi)
    return f"{left}{a}, {b}]"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def parse_int(what: str, text: object, lo: int | None = None, hi: int | None = None) -> int:
    """``text`` as an integer in [lo, hi]: ASCII digits with an optional sign, nothing else."""
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise ConfigError(f"{what!r} must be an integer in {_interval(lo, hi)} (got {text!r})")
    if isinstance(text, str):
        s = text.strip()
        if not (s.isascii() and _INT.fullmatch(s)) or len(s) > 30:
            raise ConfigError(f"{what!r} must be an integer in {_interval(lo, hi)} (got {text!r})")
        value = int(s)
    else:
        value = text
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{what!r} must be an integer in {_interval(lo, hi)} (got {text!r})")
    return value


def parse_float(
    what: str, text: object, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False
) -> float:
    """``text`` as a finite number in [lo, hi] (or (lo, hi] with ``lo_open``): ASCII decimal only."""
    bounds = _interval(lo, hi, lo_open)
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise ConfigError(f"{what!r} must be a finite number in {bounds} (got {text!r})")
    if isinstance(text, str):
        s = text.strip()
        if not (s.isascii() and _FLOAT.fullmatch(s)) or len(s) > 40:
            raise ConfigError(f"{what!r} must be a finite number in {bounds} (got {text!r})")
        value = float(s)
    else:
        value = float(text)
    if (
        not math.isfinite(value)
        or (lo is not None and (value <= lo if lo_open else value < lo))
        or (hi is not None and value > hi)
    ):
        raise ConfigError(f"{what!r} must be a finite number in {bounds} (got {text!r})")
    return value


class IntRange(click.ParamType):  # type: ignore[type-arg]  # click 8.1 (setup.cfg allows it) has no generic ParamType
    """A click type: a strict integer in [lo, hi] (see :func:`parse_int`)."""

    name = "integer"

    def __init__(self, what: str, lo: int | None = None, hi: int | None = None) -> None:
        self.what, self.lo, self.hi = what, lo, hi

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return parse_int(self.what, value, self.lo, self.hi)


class FloatRange(click.ParamType):  # type: ignore[type-arg]  # click 8.1 (setup.cfg allows it) has no generic ParamType
    """A click type: a strict finite number in [lo, hi] or (lo, hi] (see :func:`parse_float`)."""

    name = "number"

    def __init__(self, what: str, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> None:
        self.what, self.lo, self.hi, self.lo_open = what, lo, hi, lo_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        return parse_float(self.what, value, self.lo, self.hi, lo_open=self.lo_open)


def read_small_file(what: str, path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or a one-line :class:`ConfigError`.

    Opened without blocking, so a FIFO or a device named by the user is refused instead of waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{what} {str(path)!r} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{what} {str(path)!r} is larger than {max_bytes} bytes")
    return data


def check_writable_dir(what: str, path: Path) -> None:
    """Refuse ``path`` unless it is a folder we can write in, or one we can create.

    Walks up to the nearest existing ancestor: every existing part must be a folder, and the
    nearest one writable. Permission bits say nothing for root or a read-only or virtual file
    system, so a file is made there and removed at once; nothing is left behind.
    """
    probe = path
    while True:
        try:
            exists = probe.exists()
        except OSError as exc:
            raise ConfigError(f"{what!r} folder {str(path)!r} cannot be used: {exc.strerror}") from None
        if exists:
            break
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what!r} folder {str(path)!r} cannot be created: {str(probe)!r} is not a folder")
    refused = ConfigError(f"{what!r} folder {str(path)!r} is not writable ({str(probe)!r} refuses writes)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise refused
    try:
        fd, name = tempfile.mkstemp(prefix=".recsuite-probe-", dir=probe)
    except OSError:
        raise refused from None
    os.close(fd)
    os.unlink(name)


#: The most GPUs ``--devices`` may name on one host.
MAX_DEVICES = 1024


#: ``--devices in-process``: the GPU backend in the driver process, on cuda:0, no worker process.
IN_PROCESS = "in-process"


def parse_devices_text(text: object) -> str | int | tuple[int, ...]:
    """``--devices`` before any GPU is counted: ``"all"``, :data:`IN_PROCESS`, a count N >= 1, or
    distinct GPU indices (``0,2``), which come back as a tuple even for one index (``--devices 1``
    is a count)."""
    form = f"'devices' must be all, a count N in [1, {MAX_DEVICES}], GPU indices like 0,2 or {IN_PROCESS} (got {text!r})"
    if not isinstance(text, str):
        raise ConfigError(form)
    s = text.strip()
    if s in ("all", IN_PROCESS):
        return s
    if "," not in s:
        if not (s.isascii() and s.isdigit()) or not 1 <= int(s) <= MAX_DEVICES:
            raise ConfigError(form)
        return int(s)
    parts = [p.strip() for p in s.split(",")]
    if not all(p.isascii() and p.isdigit() and len(p) <= 4 and int(p) < MAX_DEVICES for p in parts):
        raise ConfigError(form)
    indices = tuple(int(p) for p in parts)
    seen: set[int] = set()
    for i in indices:
        if i in seen:
            raise ConfigError(f"'devices' names cuda:{i} twice (got {text!r})")
        seen.add(i)
    return indices

