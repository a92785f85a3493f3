"""Hostile and damaged result folders against every reader: findings and damaged rows, never a
traceback, a hang or an unbounded allocation.

One real smoke run (null backend, Offline, performance and accuracy) is made per module; a seeded
mutator then rewrites its ``config.json`` and ``result.json`` thousands of times (type swaps, NaN
and Infinity literals, huge numbers, deep nesting, long strings, truncation, binary junk) and the
readers are run on each: the record parser for most, ``suite check`` / ``compare`` / ``summary``
as library calls and through click for a sample, and a handful through a real subprocess under an
address-space cap (``resource.setrlimit``), which proves memory stays bounded.
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import smoke_config

from suite import compare, record
from suite.check import check
from suite.cli import cli
from suite.config import Mode
from suite.errors import RecordError
from suite.record import ConfigRecord, ResultRecord
from suite.runner import run

SCEN = Path("testsys/dlrm-rmc1/Offline")
PERF = SCEN / "performance/run_1"
ACC = SCEN / "accuracy"
SEED = 20261130
EXITS = {0, 1, 2}


@pytest.fixture(scope="module")
def smoke_tree(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A real results tree: the null backend's Offline performance and accuracy runs."""
    root = tmp_path_factory.mktemp("fuzz") / "results"
    run(smoke_config(root))
    run(smoke_config(root, mode=Mode.ACCURACY))
    return root


@pytest.fixture
def tree(smoke_tree: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(smoke_tree, tmp_path / "results"))


# The mutator ---------------------------------------------------------------------------------

DEEP = "\x00DEEP\x00"  # replaced by nesting after json.dumps
HUGE = "\x00HUGE\x00"  # replaced by a 5000-digit integer (json.dumps refuses to write one)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*here, i))


def _set(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = node
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return node


def _replacement(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 1.5, "", "x", "Server", [], {}, [1, 2], {"a": 1},
        float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 2**64, 2**200, HUGE, "x" * 100_000,
        "lognormal:nan,0.2", "lognormal:1e308,1", "fixed:1e9", "file:/dev/zero", "normal:165,inf",
        DEEP, [DEEP], {"k": DEEP},
    ])  # fmt: skip


def mutate(rng: random.Random, text: str) -> bytes:
    """One seeded mutation of a record's JSON text."""
    kind = rng.random()
    raw = text.encode()
    if kind < 0.08:
        return raw[: rng.randrange(len(raw))]  # truncated
    if kind < 0.12:
        return rng.randbytes(rng.randrange(1, 4096))  # binary junk
    if kind < 0.15:
        i = rng.randrange(len(raw))
        return raw[:i] + rng.randbytes(8) + raw[i:]
    data = json.loads(text)
    for _ in range(rng.choice((1, 1, 2, 3))):
        paths = list(_paths(data))
        path = rng.choice(paths)
        op = rng.random()
        if op < 0.1 and path:
            parent = data
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
        elif op < 0.15 and isinstance(data, dict):
            data["unknown_" + str(rng.randrange(100))] = _replacement(rng)
        else:
            data = _set(data, path, _replacement(rng))
    out = json.dumps(data)  # NaN/Infinity literals, big integers as digits
    depth = rng.choice((33, 100, 5000, 200_000))
    return out.replace(json.dumps(DEEP), "[" * depth + "]" * depth).replace(json.dumps(HUGE), "1" + "0" * 5000).encode()


def cases(n: int, seed: int, texts: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    names = sorted(texts)
    for _ in range(n):
        name = rng.choice(names)
        yield name, mutate(rng, texts[name])


def _records(tree: Path) -> dict[str, str]:
    return {str(folder / name): (tree / folder / name).read_text() for folder in (PERF, ACC) for name in ("config.json", "result.json")}


# The readers on thousands of mutated records ----------------------------------------------------


def test_record_parser_takes_thousands_of_mutations(smoke_tree: Path) -> None:
    """Every mutated record parses or raises RecordError with field paths; nothing else escapes."""
    texts = _records(smoke_tree)
    outcomes = {"ok": 0, "file": 0, "field": 0}
    start = time.monotonic()
    for name, data in cases(2500, SEED, texts):
        kind = ResultRecord if name.endswith("result.json") else ConfigRecord
        try:
            parsed = kind.from_json(data, Path(name).name)
        except RecordError as exc:
            assert exc.problems and all(isinstance(w, str) and isinstance(p, str) and p for w, p in exc.problems)
            outcomes["field" if exc.problems[0][0] else "file"] += 1
        else:
            outcomes["ok"] += 1
            # What parses is bounded and finite, and writes back as strict JSON.
            json.loads(parsed.to_json(), parse_constant=lambda c: pytest.fail(f"{c} written"))
    assert time.monotonic() - start < 30
    assert min(outcomes.values()) > 50, outcomes


def _plant(tree: Path, name: str, data: bytes) -> Path:
    path = tree / name
    path.unlink()
    path.write_bytes(data)
    return path


def test_check_compare_and_summary_turn_mutations_into_findings(tree: Path) -> None:
    """The library readers over mutated folders: findings and damaged rows, never an exception."""
    texts = _records(tree)
    damaged = 0
    for name, data in cases(80, SEED + 1, texts):
        _plant(tree, name, data)
        start = time.monotonic()
        report = check([tree])
        assert all(f.rule for f in report.findings)
        frame = compare.load([tree])
        assert len(frame) == 1
        damaged += frame["status"].iloc[0].startswith("DAMAGED")
        assert time.monotonic() - start < 10
        (tree / name).write_text(texts[name])
    assert damaged > 10


def _invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in EXITS, (args, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_the_cli_on_a_sample_of_mutations(tree: Path, tmp_path: Path) -> None:
    texts = _records(tree)
    for i, (name, data) in enumerate(cases(24, SEED + 2, texts)):
        _plant(tree, name, data)
        start = time.monotonic()
        code, _ = _invoke(["check", str(tree)])
        assert code == 1  # the null backend's runs fail the rules, damaged or not
        assert _invoke(["summary", str(tree)])[0] == 0
        if i % 8 == 0:  # compare draws its plots: a few suffice
            assert _invoke(["compare", str(tree), "--out", str(tmp_path / f"cmp{i}")])[0] == 0
        assert time.monotonic() - start < 30
        (tree / name).write_text(texts[name])


# Special files ------------------------------------------------------------------------------


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _loop(path: Path) -> None:
    path.unlink()
    os.symlink(path.name, path)  # a symlink to itself


def _outside(path: Path) -> None:
    path.unlink()
    os.symlink("/etc/hostname", path)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _huge(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(8 << 30)  # sparse: 8 GiB that reading whole would allocate


def _deep(path: Path) -> None:
    path.write_text('{"config": ' * 50_000 + "1" + "}" * 50_000)  # 600 KB: under the size cap


SPECIAL: list[tuple[Callable[[Path], None], str, str]] = [
    (_fifo, "structure.unreadable", "config.json is not a regular file (a FIFO)"),
    (_loop, "structure.unreadable", "config.json cannot be read (Too many levels of symbolic links)"),
    (_outside, "structure.unreadable", "config.json leads out of"),
    (_folder, "structure.unreadable", "config.json is not a regular file (a folder)"),
    (_huge, "structure.unreadable", "config.json is 8589934592 bytes, over the 1048576-byte cap"),
    (_deep, "structure.unreadable", "config.json is nested deeper than 32 levels"),
]


@pytest.mark.parametrize(("tamper", "rule", "message"), SPECIAL, ids=[t[0].__name__.strip("_") for t in SPECIAL])
def test_special_files_are_findings_and_damaged_rows(tree: Path, tmp_path: Path, tamper: Callable[[Path], None], rule: str, message: str) -> None:
    tamper(tree / PERF / "config.json")
    start = time.monotonic()
    report = check([tree])
    found = [f for f in report.findings if f.path == str(tree / PERF / "config.json")]
    assert [f.rule for f in found] == [rule] and found[0].message.startswith(message), found
    assert time.monotonic() - start < 10
    frame = compare.load([tree])
    assert frame["status"].iloc[0].startswith("DAMAGED: config.json")
    code, out = _invoke(["compare", str(tree), "--out", str(tmp_path / "cmp")])
    assert code == 0 and "DAMAGED: config.json" in out


def test_a_fifo_result_json_is_a_damaged_summary_row(tree: Path) -> None:
    _fifo(tree / PERF / "result.json")
    result = CliRunner().invoke(cli, ["summary", str(tree)])
    assert result.exit_code == 0
    assert result.stderr == f"warning: {tree / PERF / 'result.json'}: result.json is not a regular file (a FIFO)\n"
    assert result.stdout.splitlines()[-1].split() == [str(tree / PERF), "-", "-", "damaged"]


# Bounded memory, proven in a real process ---------------------------------------------------------


def _capped(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _suite(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``suite ARGS`` in a subprocess with a 1.5 GiB address space (the readers need ~0.3 GiB)."""
    return subprocess.run(
        [sys.executable, "-c", "from suite.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120, env=env, preexec_fn=_capped(3 << 29),
    )  # fmt: skip


def test_hostile_folders_stay_within_an_address_space_cap(tree: Path, tmp_path: Path, data_dir: Path) -> None:
    """The issue's cases (a NaN query size in config.json took 7.8 GB; deep nesting and a FIFO
    crashed or hung the readers) in a real process whose address space is capped."""
    conf = tree / ACC / "config.json"
    data = json.loads(conf.read_text())
    data["settings"]["query_size"] = "lognormal:nan,0.2"
    conf.write_text(json.dumps(data))
    _deep(tree / PERF / "result.json")
    _fifo(tree / PERF / "config.json")
    env = {**os.environ, "RECSUITE_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for args, code in (
        (["check", str(tree)], 1),
        (["summary", str(tree)], 0),
        (["compare", str(tree), "--out", str(tmp_path / "cmp")], 0),
        (["check", str(tree / ACC)], 1),
    ):
        done = _suite(args, env)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr
    assert "config.json: settings.query_size: must hold finite numbers" in _suite(["check", str(tree / ACC)], env).stdout


# Tampers with exact rule ids --------------------------------------------------------------------


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _findings(tree: Path, name: Path) -> list[tuple[str, str]]:
    return [(f.rule, f.message) for f in check([tree]).findings if f.path == str(tree / name)]


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (ACC / "config.json", lambda d: d["settings"].update(query_size="lognormal:nan,0.2"),
         "config.json: settings.query_size: must hold finite numbers of at most 1e6 (got 'lognormal:nan,0.2')"),
        (PERF / "config.json", lambda d: d["settings"].update(target_qps=math.inf),
         "config.json: settings.target_qps: must be a finite number (got inf)"),
        (PERF / "config.json", lambda d: d["config"].update(scenario=5),
         "config.json: config.scenario: must be one of ['Offline', 'Server', 'SingleStream', 'MultiStream'] (got 5)"),
        (PERF / "config.json", lambda d: d.update(schema_version=99), "config.json: schema_version: must be in [1, 2] (got 99)"),
        (PERF / "result.json", lambda d: d["harness"].update(duration_s="fast"),
         "result.json: harness.duration_s: must be a number (got 'fast')"),
        (PERF / "result.json", lambda d: d["performance"]["metric"].update(value=-1),
         "result.json: performance.metric.value: must be in [0, 1e+18] (got -1)"),
        (PERF / "result.json", lambda d: d.update(errors=["x" * 70_000]),
         "result.json: errors[0]: must be at most 65536 characters (got 70000)"),
        (PERF / "result.json", lambda d: d["config"].pop("model"), "result.json: config.model: is missing"),
    ],
)
def test_damaged_fields_are_record_invalid(tree: Path, name: Path, change: Callable[[dict[str, Any]], None], message: str) -> None:
    _edit(tree / name, change)
    assert ("record.invalid", message) in _findings(tree, name)


def test_a_damaged_config_does_not_read_as_missing(tree: Path) -> None:
    _edit(tree / ACC / "config.json", lambda d: d["settings"].update(query_size="lognormal:nan,0.2"))
    assert ("accuracy.labels", "config.json is damaged (see its findings); the AUC cannot be recomputed") in _findings(tree, ACC / "config.json")


def test_real_records_round_trip_and_carry_their_version(smoke_tree: Path) -> None:
    for name, text in _records(smoke_tree).items():
        kind = ResultRecord if name.endswith("result.json") else ConfigRecord
        parsed = kind.from_json(text)
        assert parsed.schema_version == record.SCHEMA_VERSION == json.loads(text)["schema_version"]
        assert parsed.to_dict() == json.loads(text)
        assert kind.from_json(parsed.to_json()) == parsed


def test_a_record_without_schema_version_reads_as_version_1(tree: Path) -> None:
    _edit(tree / PERF / "result.json", lambda d: d.pop("schema_version"))
    _edit(tree / PERF / "config.json", lambda d: d.pop("schema_version"))
    assert record.read_result(tree / PERF / "result.json").schema_version == 1
    assert not [f for f in check([tree]).findings if f.rule.startswith(("record.", "structure."))]


def test_unknown_keys_are_kept_and_bounded(tree: Path) -> None:
    _edit(tree / PERF / "result.json", lambda d: d.update(interrupted_at={"queries": 12}))
    parsed = record.read_result(tree / PERF / "result.json")
    assert parsed.extra["interrupted_at"] == {"queries": 12} and parsed.to_dict()["interrupted_at"] == {"queries": 12}
    _edit(tree / PERF / "result.json", lambda d: d.update(interrupted_at={"queries": math.nan}))
    with pytest.raises(RecordError, match=r"interrupted_at\.queries: must be a finite number \(got nan\)"):
        record.read_result(tree / PERF / "result.json")


def test_a_fifo_or_deep_tuned_file_is_one_line_error(tmp_path: Path) -> None:
    from suite.errors import ConfigError
    from suite.tune import load_tuned

    fifo = tmp_path / "tuned.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"^'tuned' file '.*tuned\.json' is not a regular file \(a FIFO\)$"):
        load_tuned(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100 + "]" * 100)
    with pytest.raises(ConfigError, match=r"^'tuned' file '.*deep\.json' is nested deeper than 32 levels$"):
        load_tuned(deep)


def test_a_dataset_folder_with_a_fifo_is_a_finding_not_a_hang(tree: Path, tmp_path: Path, data_dir: Path) -> None:
    """A received folder may name a dataset it ships: check opens no FIFO among its files."""
    conf = json.loads((tree / ACC / "config.json").read_text())
    shipped = Path(shutil.copytree(conf["dataset"]["path"], tmp_path / "shipped"))
    (shipped / "labels.npy").unlink()
    os.mkfifo(shipped / "labels.npy")
    _edit(tree / ACC / "config.json", lambda d: d["dataset"].update(path=str(shipped)))
    assert ("accuracy.labels", f"the dataset is not available: {shipped / 'labels.npy'} is not a regular file") in _findings(
        tree, ACC / "config.json"
    )
