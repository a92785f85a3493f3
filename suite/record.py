"""The record of a run: ``config.json`` and ``result.json`` as frozen, versioned, validated dataclasses.

``suite run`` writes both files (``suite.runner``); every reader (``summary``, ``check``,
``compare``, ``submit``, ``audit``, ``tune``) reads them through this module, so a record is
validated once, at the boundary, and used as typed attributes afterwards.

Reading is bounded whatever a folder holds: :func:`read_bytes` opens regular files only (a FIFO,
a device, a folder or a symlink that leads out of the tree is refused before anything blocks), reads
at most a per-kind cap (:data:`JSON_CAP_BYTES` for the records), and :func:`loads` refuses JSON
nested deeper than :data:`MAX_DEPTH`. :meth:`ConfigRecord.from_dict` checks every known field's
type, range and finiteness, every string's length and every list's size, and keeps unknown keys
(a newer writer's) in ``extra`` after the same generic bounds. Faults raise
:class:`~suite.errors.RecordError` with one ``(field path, problem)`` per fault, which ``suite
check`` reports as findings and ``summary``/``compare`` as a damaged row; nothing here allocates in
proportion to a value read from a file.

Versions: :data:`SCHEMA_VERSION` is written by new runs as ``schema_version``; a record without
one is version 1 (the format before the field existed, which it does not change); a newer version
than this suite knows is refused. Version 2 changed no field: its runs laid a quantile list's query
sizes stratified (:meth:`suite.datasets.queries.QuerySizes.offsets`), so whoever rebuilds a run's
queries from its record asks :func:`stratified_queries`.

Size: this module is over 450 lines because every record type and its one strict reader (types, bounds, messages with the path) belong together.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import stat
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from suite.errors import RecordError

SCHEMA_VERSION = 2
#: The first schema version whose runs laid a quantile list's query sizes stratified.
STRATIFIED_SINCE = 2
#: Caps on what a reader reads of one file (bytes).
JSON_CAP_BYTES = 1 << 20  # config.json, result.json, power.json, tuned.json, systems/*.json
TEXT_CAP_BYTES = 1 << 20  # mlperf_log_summary.txt, accuracy.txt, verify_*.txt
DETAIL_CAP_BYTES = 64 << 20  # mlperf_log_detail.txt: ~30 KB for a real run, a few MB with every warning
#: A results tree keeps the full accuracy log (MLPerf's dlrm-v2 accuracy run: ~1 GB); a submission's
#: must be truncated to 10 KiB (``submission.size``).
ACCURACY_LOG_CAP_BYTES = 2 << 30
MAX_DEPTH = 32
#: Bounds on values: names and short strings, free text (error messages), list and object sizes.
MAX_NAME = 1024
MAX_TEXT = 64 * 1024
MAX_ITEMS = 10_000
MAX_NUMBER = 1e18
#: The values ``status`` takes ("interrupted": a run stopped by SIGINT/SIGTERM).
STATUSES = ("valid", "invalid", "failed", "interrupted", "not gated")
SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
MODES = ("performance", "accuracy")


# Bounded reading ---------------------------------------------------------------------------


def _refuse(path: Path, problem: str) -> RecordError:
    return RecordError(f"{path.name} {problem}", (("", problem),))


def read_bytes(path: Path, cap: int, *, root: Path | None = None) -> bytes:
    """At most ``cap`` bytes of the regular file ``path``; anything else is refused, never waited on.

    Args:
        root: where a symlink may lead; a path that resolves outside it is refused.

    Raises:
        RecordError: not a regular file (FIFO, device, folder, socket), a symlink loop or a link out
            of ``root``, unreadable, or larger than ``cap``.
    """
    if root is not None:
        real, top = os.path.realpath(path), os.path.realpath(root)
        if real != top and not real.startswith(top.rstrip(os.sep) + os.sep):
            raise _refuse(path, f"leads out of {root} (to {real})")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, f"is not a regular file ({_kind(info.st_mode)})")
    if info.st_size > cap:
        raise _refuse(path, f"is {info.st_size} bytes, over the {cap}-byte cap")
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO after the stat, open does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _refuse(path, "is not a regular file (replaced while opening)")
        chunks, got = [], 0
        while got <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            raise _refuse(path, "is not a regular file") from None
        raise _refuse(path, f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if got > cap:
        raise _refuse(path, f"grew over the {cap}-byte cap while being read")
    return b"".join(chunks)


def read_text(path: Path, cap: int, *, root: Path | None = None) -> str:
    """:func:`read_bytes` decoded as UTF-8, undecodable bytes replaced (logs are judged by their lines)."""
    return read_bytes(path, cap, root=root).decode("utf-8", errors="replace")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "not a plain file"


def loads(data: bytes | str, name: str = "JSON") -> Any:
    """JSON text parsed with its nesting depth capped at :data:`MAX_DEPTH`.

    ``NaN``/``Infinity`` literals parse (to be refused per field, with its path); integers longer
    than Python's 4300 digits, bad UTF-8 and bad JSON are refused.

    Raises:
        RecordError: not JSON, or nested too deep (the field path is ``""``: the whole file).
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except RecursionError:
        raise RecordError(f"{name} is nested too deep", (("", f"is nested deeper than {MAX_DEPTH} levels"),)) from None
    except UnicodeDecodeError as exc:
        raise RecordError(f"{name} is not UTF-8 text", (("", f"is not UTF-8 text ({exc.reason} at byte {exc.start})"),)) from None
    except ValueError as exc:  # JSONDecodeError, and int() over its digit limit
        raise RecordError(f"{name} is not JSON", (("", f"is not JSON ({_clip(str(exc), 200)})"),)) from None
    if _depth(value) > MAX_DEPTH:
        raise RecordError(f"{name} is nested too deep", (("", f"is nested deeper than {MAX_DEPTH} levels"),))
    return value


def read_json(path: Path, cap: int = JSON_CAP_BYTES, *, root: Path | None = None) -> Any:
    """:func:`read_bytes` then :func:`loads`; every fault is a :class:`RecordError`."""
    return loads(read_bytes(path, cap, root=root), path.name)


def read_object(path: Path, cap: int = JSON_CAP_BYTES, *, root: Path | None = None) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold one JSON object."""
    value = read_json(path, cap, root=root)
    if not isinstance(value, dict):
        raise RecordError(f"{path.name} is not a JSON object", (("", f"is not a JSON object (got {type(value).__name__})"),))
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


# Validation --------------------------------------------------------------------------------


class _Bad(Exception):
    """A field failed; its problem is already in the list."""


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """A short, bounded description of a value for a message."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'} of {len(value)}"
    return _clip(repr(value), 60)


def spec(*, lo: float | None = None, hi: float | None = None, max_len: int = MAX_NAME, check: Any = None) -> dict[str, Any]:
    """Field metadata for :func:`_convert`: a number's range, a string's length, an extra check
    (``check(value) -> problem or None``)."""
    return {"lo": lo, "hi": hi, "max_len": max_len, "check": check}


def _field(default: Any = None, **kwargs: Any) -> Any:
    return field(default=default, metadata=spec(**kwargs))


def _convert(tp: Any, value: Any, where: str, meta: Mapping[str, Any], problems: list[tuple[str, str]]) -> Any:
    def bad(message: str) -> None:
        problems.append((where, message))
        raise _Bad

    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        _generic(value, where, problems)
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        # A number or a word (``target_qps``: a number or "auto"): the word's Literal takes strings.
        literal = next((a for a in inner if get_origin(a) is Literal), None)
        if literal is not None and len(inner) > 1:
            if isinstance(value, str):
                return _convert(literal, value, where, {}, problems)
            inner.remove(literal)
        (only,) = inner
        return _convert(only, value, where, meta, problems)
    if value is None:
        bad("must not be null")
    if origin is Literal:
        if not isinstance(value, str) or value not in args:
            bad(f"must be one of {list(args)} (got {_show(value)})")
    elif tp is bool:
        if not isinstance(value, bool):
            bad(f"must be true or false (got {_show(value)})")
    elif tp is int or tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (tp is int and not isinstance(value, int)):
            bad(f"must be {'an integer' if tp is int else 'a number'} (got {_show(value)})")
        if isinstance(value, float) and not math.isfinite(value):
            bad(f"must be a finite number (got {value!r})")
        lo, hi = meta.get("lo"), meta.get("hi")
        lo = -MAX_NUMBER if lo is None else lo
        hi = MAX_NUMBER if hi is None else hi
        if not lo <= value <= hi:
            bad(f"must be in [{lo:g}, {hi:g}] (got {_clip(str(value), 40)})")
        value = float(value) if tp is float else value
    elif tp is str:
        if not isinstance(value, str):
            bad(f"must be a string (got {_show(value)})")
        limit = meta.get("max_len") or MAX_NAME
        if len(value) > limit:
            bad(f"must be at most {limit} characters (got {len(value)})")
    elif origin is tuple:
        if not isinstance(value, list):
            bad(f"must be a list (got {_show(value)})")
        if len(value) > MAX_ITEMS:
            bad(f"must hold at most {MAX_ITEMS} entries (got {len(value)})")
        if len(args) == 2 and args[1] is Ellipsis:
            kinds = [args[0]] * len(value)
        elif len(value) != len(args):
            bad(f"must hold {len(args)} entries (got {len(value)})")
        else:
            kinds = list(args)
        out = []
        for i, (kind, item) in enumerate(zip(kinds, value, strict=False)):
            out.append(_convert(kind, item, f"{where}[{i}]", meta, problems))
        value = tuple(out)
    elif origin is Mapping:
        if not isinstance(value, dict):
            bad(f"must be an object (got {_show(value)})")
        if len(value) > MAX_ITEMS:
            bad(f"must hold at most {MAX_ITEMS} keys (got {len(value)})")
        value = types.MappingProxyType(
            {k: _convert(args[1], v, f"{where}.{_clip(k, 40)}", meta, problems) for k, v in _keys_ok(value, where, problems)}
        )
    elif dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            bad(f"must be an object (got {_show(value)})")
        # is_dataclass narrows to instance-or-class; a field's type hint is always the class.
        return _from_obj(tp, value, where, problems)  # type: ignore[type-var, arg-type]  # see above
    else:  # pragma: no cover - a field type this module does not handle
        raise TypeError(f"unsupported record field type {tp!r}")
    check = meta.get("check")
    if check is not None and (problem := check(value)) is not None:
        bad(problem)
    return value


def _keys_ok(obj: dict[str, Any], where: str, problems: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    for key in obj:
        if len(key) > MAX_NAME:
            problems.append((where, f"has a key of {len(key)} characters (at most {MAX_NAME})"))
            raise _Bad
    return list(obj.items())


def _generic(value: Any, where: str, problems: list[tuple[str, str]]) -> None:
    """Bounds on a value of no declared type (an unknown key, a backend's own info)."""
    stack = [(value, where, 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            problems.append((path, f"is nested deeper than {MAX_DEPTH} levels"))
            raise _Bad
        if isinstance(node, float) and not math.isfinite(node):
            problems.append((path, f"must be a finite number (got {node!r})"))
            raise _Bad
        if isinstance(node, str) and len(node) > MAX_TEXT:
            problems.append((path, f"must be at most {MAX_TEXT} characters (got {len(node)})"))
            raise _Bad
        if isinstance(node, (dict, list)) and len(node) > MAX_ITEMS:
            problems.append((path, f"must hold at most {MAX_ITEMS} entries (got {len(node)})"))
            raise _Bad
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{_clip(str(k), 40)}", depth + 1) for k, v in _keys_ok(node, path, problems))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


R = TypeVar("R", bound="_Record")


def _from_obj(cls: type[R], obj: dict[str, Any], where: str, problems: list[tuple[str, str]]) -> R:
    hints = _hints(cls)  # type: ignore[arg-type]  # a class is Hashable; mypy does not see it through type[R]
    kwargs: dict[str, Any] = {}
    failed = False
    known = set()
    for f in dataclasses.fields(cls):
        if f.name in ("extra", "keys"):
            continue
        known.add(f.name)
        path = f"{where}.{f.name}" if where else f.name
        if f.name not in obj:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append((path, "is missing"))
                failed = True
            continue
        try:
            kwargs[f.name] = _convert(hints[f.name], obj[f.name], path, f.metadata, problems)
        except _Bad:
            failed = True
    extra = {}
    try:
        for key, value in _keys_ok(obj, where, problems):
            if key not in known:
                _generic(value, f"{where}.{_clip(key, 40)}" if where else _clip(key, 40), problems)
                extra[key] = value
    except _Bad:
        failed = True
    if failed:
        raise _Bad
    return cls(**kwargs, extra=types.MappingProxyType(extra), keys=tuple(k for k in obj if k in known))


def _dump(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_dump(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _dump(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, kw_only=True)
class _Record:
    """Base of every record section: unknown keys kept in ``extra``, known keys present in ``keys``."""

    #: Keys the source held that this section does not declare (a newer writer's), generically bounded.
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: The declared keys the source held, in its order (``to_dict`` writes these back); None: all.
    keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls: type[R], data: Any, name: str | None = None) -> R:
        """Validate ``data`` (parsed JSON) into this record.

        Raises:
            RecordError: with one ``(field path, problem)`` per fault found.
        """
        name = name or cls.__name__
        problems: list[tuple[str, str]] = []
        if not isinstance(data, dict):
            raise RecordError(f"{name} is not a JSON object", (("", f"is not a JSON object (got {type(data).__name__})"),))
        try:
            return _from_obj(cls, data, "", problems)
        except _Bad:
            first = f"{problems[0][0]}: {problems[0][1]}" if problems else "invalid"
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RecordError(f"{name} {first}{more}", tuple(problems[:20])) from None

    @classmethod
    def from_json(cls: type[R], text: bytes | str, name: str | None = None) -> R:
        """Parse (depth-capped) and validate."""
        return cls.from_dict(loads(text, name or cls.__name__), name)

    @classmethod
    def read(cls: type[R], path: Path, *, root: Path | None = None) -> R:
        """Read ``path`` bounded (:func:`read_bytes`, :data:`JSON_CAP_BYTES`) and validate it."""
        return cls.from_dict(read_json(path, JSON_CAP_BYTES, root=root), path.name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the declared keys the source held (all, for a record built in code), then ``extra``."""
        names = self.keys if self.keys is not None else [f.name for f in dataclasses.fields(self) if f.name not in ("extra", "keys")]
        out = {name: _dump(getattr(self, name)) for name in names}
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"


# The sections ------------------------------------------------------------------------------


def _query_size_problem(value: str) -> str | None:
    """Why a recorded ``--query-size`` spec cannot be re-derived safely, or None.

    The same parser as the CLI, plus what a reader needs before drawing from it: finite, sane numbers.
    """
    from suite.datasets.queries import QuerySizes
    from suite.errors import ConfigError

    kind, _, arg = value.partition(":")
    if kind == "file":
        return None if arg else "file: needs a path"
    if kind in ("lognormal", "normal", "fixed"):
        try:
            numbers = [float(p) for p in arg.split(",")]
        except ValueError:
            numbers = []
        if any(not math.isfinite(n) or abs(n) > 1e6 for n in numbers):
            return f"must hold finite numbers of at most 1e6 (got {_clip(value, 60)!r})"
    try:
        QuerySizes.parse(value)
    except ConfigError as exc:
        return str(exc)
    return None


@dataclass(frozen=True, kw_only=True)
class ModelRecord(_Record):
    name: str
    scale: str | None = None
    seed: int = _field(0, lo=0, hi=2**64 - 1)
    tasks: int = _field(1, lo=1, hi=1024)


@dataclass(frozen=True, kw_only=True)
class RunConfigRecord(_Record):
    """``config`` of ``config.json``: the run's options (``RunConfig.to_dict``)."""

    model: ModelRecord
    backend: str
    scenario: Literal["Offline", "Server", "SingleStream", "MultiStream"]
    mode: Literal["performance", "accuracy"]
    profile: str | None = None
    #: A number, or "auto" (``--target-qps auto``: ``settings`` and ``calibration`` hold the number).
    target_qps: float | Literal["auto"] | None = _field(lo=0.0, hi=1e9)
    query_size: str | None = _field(check=_query_size_problem)
    rows: int | None = _field(lo=0, hi=2**40)
    dataset: str | None = _field(max_len=MAX_TEXT)
    output: str | None = _field(max_len=MAX_TEXT)
    system: str | None = None
    user_conf: str | None = _field(max_len=MAX_TEXT)
    threads: int | None = _field(lo=0, hi=65536)
    precision: str | None = None
    max_batch_items: int | None = _field(lo=0, hi=2**31)
    batch_timeout_us: int | None = _field(lo=0, hi=2**40)
    workers: int | None = _field(lo=0, hi=65536)
    backend_options: tuple[tuple[str, str], ...] = ()
    rules: str | None = None
    variant: str | None = None
    audit: str | None = None
    data_dir: str | None = _field(max_len=MAX_TEXT)
    overwrite: bool | None = None
    progress: bool | None = None
    power: bool | None = None
    #: ``--reference-auc``: the AUC the gate is a fraction of, for data without a teacher.
    reference_auc: float | None = _field(lo=0.0, hi=1.0)
    #: ``--devices`` (all | N | 0,2) and ``--processes N``: where the workers ran (see ``placement``).
    devices: str | None = None
    processes: int | None = _field(lo=1, hi=65536)
    #: ``--cluster`` (ray | ray://HOST:PORT): the Ray cluster the workers ran on.
    cluster: str | None = None
    #: ``--cluster-mode`` (batched | network): how the cluster's workers were fed.
    cluster_mode: str | None = None


@dataclass(frozen=True, kw_only=True)
class SettingsRecord(_Record):
    """``settings``: what the rule table, profile and options resolved to (``Settings.to_dict``)."""

    rules: str | None = None
    variant: str | None = None
    benchmark: str | None = None
    profile: str | None = None
    loadgen_model: str | None = None
    scenario: Literal["Offline", "Server", "SingleStream", "MultiStream"] | None = None
    mode: Literal["performance", "accuracy"] | None = None
    target_qps: float | None = _field(lo=0.0, hi=1e9)
    target_latency_ns: int | None = _field(lo=0, hi=10**15)
    target_latency_percentile: float | None = _field(lo=0.0, hi=1.0)
    min_duration_ms: int | None = _field(lo=0, hi=10**12)
    min_query_count: int | None = _field(lo=0, hi=10**12)
    performance_sample_count: int | None = _field(lo=0, hi=10**12)
    samples_per_query: int | None = _field(lo=0, hi=10**12)
    query_size: str | None = _field(check=_query_size_problem)
    max_batch_items: int | None = _field(lo=0, hi=2**31)
    batch_timeout_us: int | None = _field(lo=0, hi=2**40)
    batches_in_flight: int | None = _field(lo=0, hi=65536)
    accuracy_target: float | None = _field(lo=0.0, hi=1.0)
    seeds: tuple[int, int, int] | None = _field(lo=0, hi=2**64 - 1)
    audit: str | None = None
    #: Server: LoadGen's ``server_coalesce_queries`` as the harness set it (a user.conf may change it).
    coalesce_queries: bool | None = None


@dataclass(frozen=True, kw_only=True)
class DatasetRecord(_Record):
    path: str | None = _field(max_len=MAX_TEXT)
    items: int | None = _field(lo=0, hi=2**40)
    queries: int | None = _field(lo=0, hi=2**40)
    mean_query_items: float | None = _field(lo=0.0, hi=1e9)
    source: str | None = None
    model: ModelRecord | None = None
    reference_auc: tuple[float, ...] | None = _field(lo=0.0, hi=1.0)
    click_rate: tuple[float, ...] | None = _field(lo=0.0, hi=1.0)
    zipf_exponent: float | None = _field(lo=0.0, hi=100.0)


@dataclass(frozen=True, kw_only=True)
class EnvironmentRecord(_Record):
    hostname: str | None = None
    platform: str | None = None
    python: str | None = None
    cpu: str | None = None
    cores: int | None = _field(lo=0, hi=2**20)
    cores_available: int | None = _field(lo=0, hi=2**20)
    versions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ConfigRecord(_Record):
    """``config.json``: written before LoadGen starts."""

    schema_version: int = _field(1, lo=1, hi=SCHEMA_VERSION)
    config: RunConfigRecord
    benchmark: str | None = None
    settings: SettingsRecord | None = None
    dataset: DatasetRecord | None = None
    environment: EnvironmentRecord | None = None
    started: str | None = None


@dataclass(frozen=True, kw_only=True)
class BackendRecord(_Record):
    """``backend``: the backend's own ``info()`` (backend-specific keys in ``extra``)."""

    name: str | None = None
    version: str | None = None
    device: str | None = None
    precision: str | None = None
    threads: int | None = _field(lo=0, hi=65536)
    #: The accelerator's model name and memory, as the backend's driver reports them (absent on the CPU).
    accelerator_model: str | None = None
    accelerator_memory_bytes: int | None = _field(lo=0)


@dataclass(frozen=True, kw_only=True)
class GcRecord(_Record):
    """``harness.gc``: the driver's garbage collections during the run (harness.GcWatch): per
    generation (0, 1, 2) the collections and their milliseconds, objects found unreachable, and
    [seconds into the run, ms, generation] of each that took 5 ms or more (the first 32)."""

    collections: tuple[int, ...] | None = _field(lo=0)
    ms: tuple[float, ...] | None = _field(lo=0.0)
    collected: int | None = _field(lo=0)
    pauses: tuple[tuple[float, float, int], ...] | None = _field(lo=0.0)


@dataclass(frozen=True, kw_only=True)
class HarnessRecord(_Record):
    completed_queries: int | None = _field(lo=0)
    completed_items: int | None = _field(lo=0)
    batches: int | None = _field(lo=0)
    workers: int | None = _field(lo=0, hi=65536)
    max_batch_items: int | None = _field(lo=0, hi=2**31)
    mean_batch_items: float | None = _field(lo=0.0)
    duration_s: float | None = _field(lo=0.0)
    items_per_second: float | None = _field(lo=0.0)
    backend_errors: int | None = _field(lo=0)
    gather_s: float | None = _field(lo=0.0)
    predict_s: float | None = _field(lo=0.0)
    #: Issue-to-answer time of the queries inside the SUT (harness.Outcome.sut_latency), and the
    #: longest gap between two of LoadGen's issue calls: where a Server run's latency accrues.
    sut_latency_p50_ms: float | None = _field(lo=0.0)
    sut_latency_p99_ms: float | None = _field(lo=0.0)
    issue_gap_max_ms: float | None = _field(lo=0.0)
    #: LoadGen's issue calls; below ``completed_queries`` where it coalesced late queries.
    issue_calls: int | None = _field(lo=0)
    #: Server: [seconds into the run, gap in ms] of LoadGen's issue gaps of at least 20 ms and
    #: 20 mean arrival gaps (harness.stall_threshold_s; the first 32).
    issue_stalls: tuple[tuple[float, float], ...] | None = _field(lo=0.0)
    gc: GcRecord | None = None


@dataclass(frozen=True, kw_only=True)
class MetricRecord(_Record):
    name: str | None = None
    value: float | None = _field(lo=0.0)
    units: str | None = None


@dataclass(frozen=True, kw_only=True)
class PerformanceRecord(_Record):
    """``performance``: LoadGen's metric and latencies (empty for an accuracy run)."""

    metric: MetricRecord | None = None
    validity: str | None = None
    invalid_reason: str | None = _field(max_len=MAX_TEXT)
    early_stopping_met: bool | None = None
    perf_constraints_met: bool | None = None
    min_duration_met: bool | None = None
    min_queries_met: bool | None = None
    scheduled_samples_per_sec: float | None = _field(lo=0.0)
    latency_ns: Mapping[str, float | None] = field(default_factory=dict, metadata=spec(lo=0.0))
    target_latency_ns: float | None = _field(lo=0.0)
    target_latency_percentile: float | None = _field(lo=0.0, hi=1.0)
    query_count: int | None = _field(lo=0)


@dataclass(frozen=True, kw_only=True)
class AccuracyRecord(_Record):
    auc: float | None = _field(lo=0.0, hi=1.0)
    task_auc: tuple[float, ...] | None = _field(lo=0.0, hi=1.0)
    reference_auc: tuple[float, ...] | None = _field(lo=0.0, hi=1.0)
    target_fraction: float | None = _field(lo=0.0, hi=1.0)
    threshold: float | None = _field(lo=0.0, hi=1.0)
    accuracy: float | None = _field(lo=0.0, hi=1.0)
    items: int | None = _field(lo=0)
    queries: int | None = _field(lo=0)
    total_queries: int | None = _field(lo=0)
    passed: bool | None = None
    reference_source: str | None = _field(max_len=MAX_TEXT)


@dataclass(frozen=True, kw_only=True)
class PowerRecord(_Record):
    """``power`` of ``result.json`` and ``power.json`` (``suite.power``)."""

    measured: str | None = _field(max_len=MAX_TEXT)
    window_s: float | None = _field(lo=0.0)
    energy_j: float | None = _field(lo=0.0)
    average_w: float | None = _field(lo=0.0)
    throughput_samples_per_s: float | None = _field(lo=0.0)
    samples_per_j: float | None = _field(lo=0.0)
    sample_count: int | None = _field(lo=0)
    sample_hz: float | None = _field(lo=0.0)


@dataclass(frozen=True, kw_only=True)
class RoundTripRecord(_Record):
    """``placement.round_trip_us``: an empty request from the driver to a worker and back."""

    median_us: float | None = _field(lo=0.0)
    p99_us: float | None = _field(lo=0.0)
    pings: int | None = _field(lo=0, hi=10**9)


@dataclass(frozen=True, kw_only=True)
class PlacementRecord(_Record):
    """``placement`` (``suite.placement``): where the backend's workers ran.

    Added without a schema version bump: a record without it (older runs) is one node and one
    device, threads of the driver, which :meth:`ResultRecord.topology` answers for it.
    """

    #: ``threads`` (the driver's own threads), ``processes`` (local worker processes), ...
    name: str | None = None
    nodes: int = _field(1, lo=1, hi=2**20)
    devices_per_node: int = _field(1, lo=1, hi=2**20)
    workers: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    round_trip_us: RoundTripRecord | None = None
    lost_workers: tuple[str, ...] = _field((), max_len=MAX_TEXT)


@dataclass(frozen=True, kw_only=True)
class ResultRecord(ConfigRecord):
    """``result.json``: ``config.json``'s fields, then what the run produced."""

    backend: BackendRecord | None = None
    finished: str | None = None
    loadgen_version: str | None = None
    harness: HarnessRecord | None = None
    accuracy: AccuracyRecord | None = None
    performance: PerformanceRecord | None = None
    power: PowerRecord | None = None
    placement: PlacementRecord | None = None
    loadgen_errors: tuple[str, ...] = _field((), max_len=MAX_TEXT)
    errors: tuple[str, ...] = _field((), max_len=MAX_TEXT)
    valid: bool | None = None
    status: Literal["valid", "invalid", "failed", "interrupted", "not gated"] | None = None

    @property
    def topology(self) -> tuple[int, int]:
        """(nodes, devices per node) the run used: from ``placement``, else (1, 1)."""
        p = self.placement
        return (p.nodes, p.devices_per_node) if p is not None else (1, 1)

    @property
    def interruption(self) -> Mapping[str, Any]:
        """The ``interrupted`` entry of a run a signal stopped (``signal``, ``loadgen``,
        ``loadgen_s``...), or {} for any other run or a damaged entry."""
        info = self.extra.get("interrupted")
        return info if self.status == "interrupted" and isinstance(info, Mapping) else {}


def read_config(path: Path, *, root: Path | None = None) -> ConfigRecord:
    """``config.json`` at ``path``, bounded and validated (:class:`RecordError` otherwise)."""
    return ConfigRecord.read(path, root=root)


def read_result(path: Path, *, root: Path | None = None) -> ResultRecord:
    """``result.json`` at ``path``, bounded and validated (:class:`RecordError` otherwise)."""
    return ResultRecord.read(path, root=root)


def describe(error: RecordError, name: str) -> list[str]:
    """One line per problem: ``config.json: settings.query_size: must hold finite numbers...``."""
    return [f"{name}: {where}: {problem}" if where else f"{name} {problem}" for where, problem in error.problems]


def stratified_queries(schema_version: object) -> bool:
    """Whether a run whose record holds ``schema_version`` (1 when the record has none) laid its
    query sizes stratified: version 2 on."""
    return isinstance(schema_version, int) and schema_version >= STRATIFIED_SINCE
