"""``--user-conf``: LoadGen's ``user.conf`` read and checked by us first, each error naming file:line.

LoadGen's own reader (``TestSettings::FromConfig``) reports a malformed line only as an error in its
detail log, ignores keys it does not know, reads ``-5`` in an integer key as 2**64 - 5, ``010`` as
octal and ``1e5`` as 1, and takes ``target_qps = -5`` or ``nan``. Here every line is checked before
anything is loaded or written; the harness then still hands the file to LoadGen, which applies it.

The grammar is LoadGen's: ``model.Scenario.key = value`` with spaces around ``=``; ``model`` and
``Scenario`` may be ``*``; a ``#`` starts a comment (at the start of a line, or after the value).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from suite.errors import ConfigError
from suite.inputs import MAX_TARGET_QPS, read_small_file

SCENARIOS = ("*", "MultiStream", "Offline", "Server", "SingleStream")
MAX_BYTES = 1 << 20
MAX_DURATION_MS = 86_400_000  # one day
MAX_LATENCY_MS = 3_600_000  # one hour
MAX_QUERIES = 100_000_000
U64 = 2**64 - 1


@dataclass(frozen=True)
class Key:
    """A key LoadGen reads from user.conf: integer or number, its bounds, the scenarios it applies to."""

    integer: bool
    lo: float
    hi: float
    lo_open: bool = False
    scenarios: tuple[str, ...] = ()  # () : every scenario


_FLAG = Key(True, 0, 1)

#: The keys of LoadGen 5.x/6.x ``FromConfig`` that a user.conf may set, and what each must be.
KEYS: dict[str, Key] = {
    "min_duration": Key(True, 0, MAX_DURATION_MS),
    "max_duration": Key(True, 0, MAX_DURATION_MS),
    "min_query_count": Key(True, 0, MAX_QUERIES),
    "max_query_count": Key(True, 0, U64),
    "performance_sample_count_override": Key(True, 0, 2**31 - 1),
    "accuracy_sample_count_override": Key(True, 0, 2**31 - 1),
    "target_qps": Key(False, 0, MAX_TARGET_QPS, lo_open=True, scenarios=("MultiStream", "Offline", "Server")),
    "target_latency": Key(False, 0, MAX_LATENCY_MS, lo_open=True, scenarios=("MultiStream", "Server", "SingleStream")),
    "target_latency_percentile": Key(False, 0, 100, lo_open=True, scenarios=("MultiStream", "Server", "SingleStream")),
    "samples_per_query": Key(True, 1, 1_000_000, scenarios=("MultiStream",)),
    "max_async_queries": Key(True, 0, 1_000_000, scenarios=("MultiStream", "Server")),
    "coalesce_queries": Key(True, 0, 1, scenarios=("Server",)),
    "ttft_latency": Key(False, 0, MAX_LATENCY_MS, lo_open=True, scenarios=("Server",)),
    "tpot_latency": Key(False, 0, MAX_LATENCY_MS, lo_open=True, scenarios=("Server",)),
    "print_timestamps": _FLAG,
    "performance_issue_unique": _FLAG,
    "performance_issue_same": _FLAG,
    "performance_issue_same_index": Key(True, 0, U64),
    "sample_concatenate_permutation": _FLAG,
    "use_token_latencies": _FLAG,
    "infer_token_latencies": _FLAG,
    "token_latency_scaling_factor": Key(True, 0, U64),
    "accuracy_log_rng_seed": Key(True, 0, U64),
    "accuracy_log_sampling_target": Key(True, 0, U64),
}

#: Keys LoadGen reads only from its built-in mlperf.conf: in a user.conf it ignores them.
BUILT_IN_ONLY = (
    "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed", "accuracy_log_probability",
    "test05", "test05_qsl_rng_seed", "test05_sample_index_rng_seed", "test05_schedule_rng_seed",
)  # fmt: skip

# What strtoul (base 0) and strtod accept, in ASCII: decimal, hex, a decimal float. No nan/inf.
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Setting:
    """One ``model.Scenario.key = value`` line."""

    line: int
    model: str
    scenario: str
    key: str
    value: float


@dataclass(frozen=True)
class UserConf:
    """A checked user.conf: its settings in file order."""

    path: Path
    settings: tuple[Setting, ...]

    def value(self, model: str, scenario: str, key: str) -> float | None:
        """The value LoadGen takes for ``key`` (its lookup order: ``model.scenario``, ``*.scenario``,
        ``model.*``, ``*.*``; the last line wins among equal keys), or None when no line sets it."""
        found: dict[tuple[str, str], float] = {(s.model, s.scenario): s.value for s in self.settings if s.key == key}
        for where in ((model, scenario), ("*", scenario), (model, "*"), ("*", "*")):
            if where in found:
                return found[where]
        return None


def parse(path: Path) -> UserConf:
    """Read and check ``path``; raise :class:`ConfigError` naming ``path:line`` at the first bad line."""
    data = read_small_file("'user-conf' file", path, MAX_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"'user-conf' file {str(path)!r} is not UTF-8 text") from None
    settings = [s for n, line in enumerate(text.splitlines(), 1) if (s := _line(path, n, line)) is not None]
    return UserConf(path=path, settings=tuple(settings))


def _line(path: Path, n: int, line: str) -> Setting | None:
    def bad(message: str) -> ConfigError:
        return ConfigError(f"{path}:{n}: {message}")

    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    if len(words) < 3 or words[1] != "=" or "=" in words[0] or (len(words) > 3 and not words[3].startswith("#")):
        raise bad(f"expected 'model.Scenario.key = value' with spaces around '=' (got {line.strip()!r})")
    name, text = words[0], words[2]
    parts = name.split(".")
    if len(parts) != 3 or not all(parts):
        raise bad(f"the key must be 'model.Scenario.key' (got {name!r})")
    model, scenario, key = parts
    if scenario not in SCENARIOS:
        raise bad(f"'scenario' must be one of {list(SCENARIOS)} (got {scenario!r})")
    if key == "mode":
        raise bad("'mode' is set by --mode, not user.conf")
    if key in BUILT_IN_ONLY:
        raise bad(f"{key!r} is read only from LoadGen's built-in mlperf.conf; LoadGen ignores it in user.conf")
    if key not in KEYS:
        raise bad(f"'key' must be one of {sorted(KEYS)} (got {key!r})")
    spec = KEYS[key]
    if spec.scenarios and scenario != "*" and scenario not in spec.scenarios:
        raise bad(f"{key!r} applies only to {list(spec.scenarios)}; LoadGen ignores it for {scenario} (got {name!r})")
    return Setting(line=n, model=model, scenario=scenario, key=key, value=_value(bad, key, spec, text))


def _value(fail: Callable[[str], ConfigError], key: str, spec: Key, text: str) -> float:
    left = "(" if spec.lo_open else "["
    bounds = f"{left}{spec.lo:.0f}, {spec.hi:.0f}]" if spec.hi < U64 else f"{left}{spec.lo:.0f}, 2**64)"
    if spec.integer:
        if len(text) > 40 or not text.isascii() or not (_DECIMAL.fullmatch(text) or _HEX.fullmatch(text)):
            raise fail(f"{key!r} must be an integer in {bounds} (got {text!r})")
        value: float = int(text, 0)
    else:
        if len(text) > 40 or not text.isascii() or not _FLOAT.fullmatch(text):
            raise fail(f"{key!r} must be a finite number in {bounds} (got {text!r})")
        value = float(text)
    low_ok = value > spec.lo if spec.lo_open else value >= spec.lo
    if not (math.isfinite(value) and low_ok and value <= spec.hi):
        kind = "an integer" if spec.integer else "a finite number"
        raise fail(f"{key!r} must be {kind} in {bounds} (got {text!r})")
    return value
