"""DeepRecSched: the split and offload rules, a worker killed mid-run, and `suite tune` end to end."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

from suite.backends import REGISTRY, get_backend
from suite.backends.base import Backend, BackendConfig, BackendInfo
from suite.backends.deeprecsched import ACCEL_BATCH_ITEMS, DeepRecSchedBackend, SchedConfig, cut_spans, split
from suite.backends.deeprecsched.tune import Climb, never_below, setting
from suite.cli import cli
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.store import Dataset
from suite.models import ModelSpec
from suite.search import Capacity, Setting

TINY = ModelSpec(name="dlrm-rmc1", scale="tiny")
SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--no-progress"]


class StubAccelerator(Backend):
    """An accelerator that records the size of every query it gets and answers 0.5 (this test only)."""

    name = "stub-accel"
    sizes: ClassVar[list[int]] = []
    threads: ClassVar[list[str]] = []

    def load(self) -> None:
        pass

    #: When set, a call says it has started (``entered``) and waits for ``gate``.
    gate: ClassVar[threading.Event | None] = None
    entered: ClassVar[threading.Event] = threading.Event()

    #: When set, a call raises this.
    fail: ClassVar[Exception | None] = None

    def predict(self, batch: Batch) -> np.ndarray:
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(10)
        self.sizes.append(len(batch))
        self.threads.append(threading.current_thread().name)
        return batch.dense[:, 0].astype(np.float32)  # its own answer per item, to check who gets what

    def info(self) -> BackendInfo:
        return BackendInfo(name=self.name, version="0", device="stub")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("items", "batch_items", "requests"),
    [
        (100, 32, [(0, 32), (32, 64), (64, 96), (96, 100)]),
        (64, 32, [(0, 32), (32, 64)]),
        (10, 16, [(0, 10)]),
        (700, 0, [(0, 700)]),
        (1, 1, [(0, 1)]),
    ],
)
def test_a_query_of_k_items_is_cut_into_ceil_k_over_b_requests(
    items: int, batch_items: int, requests: list[tuple[int, int]]
) -> None:
    assert split(items, batch_items) == requests


def test_requests_of_a_gathered_query_cross_its_spans() -> None:
    assert cut_spans([(10, 15), (30, 33)], 3) == [[(10, 13)], [(13, 15), (30, 31)], [(31, 33)]]
    assert cut_spans([(10, 15)], 0) == [[(10, 15)]]


@pytest.fixture
def stub_accel(monkeypatch: pytest.MonkeyPatch) -> type[StubAccelerator]:
    """The stub accelerator in the registry as ``stub-accel``, with empty records."""
    monkeypatch.setitem(REGISTRY, "stub-accel", f"{__name__}:StubAccelerator")
    monkeypatch.setattr(StubAccelerator, "sizes", [])
    monkeypatch.setattr(StubAccelerator, "threads", [])
    return StubAccelerator


@pytest.fixture
def tiny_items(data_dir: Path) -> Batch:
    return Dataset.load(synthetic.ensure(TINY, 16_384)).items


def test_offload_rule_q_minus_one_stays_on_cpu_and_q_goes_to_the_accelerator(
    stub_accel: type[StubAccelerator], tiny_items: Batch
) -> None:
    q, b = 100, 32
    items = tiny_items
    options = (("accelerator", "stub-accel"), ("offload_items", str(q)), ("batch_items", str(b)), ("pool", "thread"))
    reference = get_backend("torch-cpu")(BackendConfig(model=TINY, threads=1))
    reference.load()
    with DeepRecSchedBackend(BackendConfig(model=TINY, threads=2, options=options)) as sched:
        sched.load()
        sched.attach_items(items)
        # Attaching warms the accelerator's one thread (the stub is not thread-safe) with a largest batch.
        assert StubAccelerator.sizes == [ACCEL_BATCH_ITEMS + 1024]
        StubAccelerator.sizes.clear()
        below = Batch(dense=items.dense[:q - 1], sparse=tuple(s[:q - 1] for s in items.sparse))
        below.source, below.spans = items, [(0, q - 1)]
        scores = sched.predict(below)
        assert StubAccelerator.sizes == []
        assert sched.stats == {"cpu_queries": 1, "cpu_requests": 4, "accelerator_queries": 0}  # ceil(99 / 32)
        np.testing.assert_allclose(scores, reference.predict(below), rtol=1e-5, atol=1e-6)

        at = Batch(dense=items.dense[:q], sparse=tuple(s[:q] for s in items.sparse))
        np.testing.assert_array_equal(sched.predict(at), items.dense[:q, 0])
        assert StubAccelerator.sizes == [q]
        # Offloaded queries run on the scheduler's own long-lived thread, not the caller's.
        assert set(StubAccelerator.threads) == {"recsuite-accel-0"}
        assert sched.stats == {"cpu_queries": 1, "cpu_requests": 4, "accelerator_queries": 1}
        assert sched.info().to_dict()["accelerator"]["name"] == "stub-accel"


def test_offloaded_queries_waiting_together_run_as_one_accelerator_batch(
    stub_accel: type[StubAccelerator], tiny_items: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = tiny_items
    options = (("accelerator", "stub-accel"), ("offload_items", "1"), ("pool", "thread"))
    spans = [(0, 300), (1000, 1500), (3000, 3100), (5000, 5700)]
    with DeepRecSchedBackend(BackendConfig(model=TINY, threads=1, options=options)) as sched:
        sched.load()
        sched.attach_items(items)
        StubAccelerator.sizes.clear()
        gate, entered = threading.Event(), threading.Event()
        monkeypatch.setattr(StubAccelerator, "gate", gate)
        monkeypatch.setattr(StubAccelerator, "entered", entered)
        answers: dict[int, np.ndarray] = {}

        def ask(i: int) -> None:
            answers[i] = sched.predict(Batch.of_spans(items, [spans[i]]))

        callers = [threading.Thread(target=ask, args=(i,)) for i in range(len(spans))]
        callers[0].start()
        assert entered.wait(10)  # the first query is at the accelerator, held there
        for c in callers[1:]:
            c.start()
        time.sleep(0.2)  # the other three wait in the accelerator's queue
        gate.set()
        for c in callers:
            c.join(10)
    # The first query alone, then the three that waited (500 + 100 + 700 items) as one batch; each
    # caller got the scores of its own rows.
    assert StubAccelerator.sizes == [300, 1300]
    for i, (lo, hi) in enumerate(spans):
        np.testing.assert_array_equal(answers[i], items.dense[lo:hi, 0])
    assert sched.stats["accelerator_queries"] == 4


@pytest.mark.parametrize("cpu_backend", ["torch-cpu", "onnxruntime"])
def test_worker_processes_running_each_cpu_backend_score_like_the_reference(cpu_backend: str, tiny_items: Batch) -> None:
    options = (("cpu_backend", cpu_backend), ("batch_items", "32"))
    reference = get_backend("torch-cpu")(BackendConfig(model=TINY, threads=1))
    reference.load()
    spans = [(0, 100), (500, 501), (2000, 2333)]
    with DeepRecSchedBackend(BackendConfig(model=TINY, threads=2, options=options)) as sched:
        sched.load()
        sched.attach_items(tiny_items)
        assert sched.info().to_dict()["cpu_worker"]["name"] == cpu_backend
        for span in spans:
            query = Batch.of_spans(tiny_items, [span])
            np.testing.assert_allclose(sched.predict(query), reference.predict(query), rtol=1e-4, atol=1e-5)
        assert sched.stats["cpu_requests"] == 4 + 1 + 11

def test_worker_processes_run_at_the_runs_precision(tiny_items: Batch) -> None:
    """Every CPU worker process is built with the run's --precision: int8 workers score like a
    torch-cpu int8 backend on the same query, not like the fp32 reference."""
    def single(precision: str) -> Backend:
        backend = get_backend("torch-cpu")(BackendConfig(model=TINY, threads=1, precision=precision))
        backend.load()
        return backend

    int8, fp32 = single("int8"), single("fp32")
    query = Batch.of_spans(tiny_items, [(100, 400)])
    with DeepRecSchedBackend(BackendConfig(model=TINY, threads=2, precision="int8", options=(("batch_items", "0"),))) as sched:
        sched.load()
        sched.attach_items(tiny_items)
        info = sched.info().to_dict()
        assert info["precision"] == "int8" and info["cpu_worker"]["precision"] == "int8"
        assert info["cpu_worker"]["int8"]["embedding_rows"].startswith("uint8, per-row fp32 scale and bias")
        answers = [sched.predict(query) for _ in range(4)]  # whole queries (batch_items=0): one request each
    assert sched.stats["cpu_requests"] == 4
    for answer in answers:
        np.testing.assert_allclose(answer, int8.predict(query), rtol=1e-5, atol=1e-6)
        assert float(np.abs(answer - fp32.predict(query)).max()) > 1e-4



def test_worker_processes_get_the_cpu_backends_options(tiny_items: Batch) -> None:
    """An option that is not the scheduler's reaches every CPU worker as it would reach a torch-cpu
    run: ``dense=bf16`` workers score like torch-cpu int8 with ``dense=bf16``, not like its default
    int8 dense layers, and the setting records the option."""
    def single(*options: tuple[str, str]) -> Backend:
        backend = get_backend("torch-cpu")(BackendConfig(model=TINY, threads=1, precision="int8", options=options))
        backend.load()
        return backend

    bf16_dense, int8_dense = single(("dense", "bf16")), single()
    query = Batch.of_spans(tiny_items, [(100, 400)])
    options = (("batch_items", "0"), ("dense", "bf16"))
    with DeepRecSchedBackend(BackendConfig(model=TINY, threads=2, precision="int8", options=options)) as sched:
        sched.load()
        sched.attach_items(tiny_items)
        info = sched.info().to_dict()
        assert info["cpu_worker"]["int8"]["dense"].startswith("bf16")
        assert info["scheduler"]["cpu_options"] == {"dense": "bf16"}
        assert sched.sched.options()[-1] == ("dense", "bf16")  # what a tuned.json keeps
        answers = [sched.predict(query) for _ in range(4)]
    for answer in answers:
        np.testing.assert_allclose(answer, bf16_dense.predict(query), rtol=1e-5, atol=1e-6)
        assert float(np.abs(answer - int8_dense.predict(query)).max()) > 1e-4


def test_an_accelerator_error_reaches_the_query_and_the_next_query_runs(
    stub_accel: type[StubAccelerator], tiny_items: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = (("accelerator", "stub-accel"), ("offload_items", "1"), ("pool", "thread"))
    with DeepRecSchedBackend(BackendConfig(model=TINY, threads=1, options=options)) as sched:
        sched.load()
        sched.attach_items(tiny_items)
        monkeypatch.setattr(StubAccelerator, "fail", RuntimeError("device lost"))
        with pytest.raises(RuntimeError, match="^device lost$"):
            sched.predict(Batch.of_spans(tiny_items, [(0, 10)]))
        monkeypatch.setattr(StubAccelerator, "fail", None)
        np.testing.assert_array_equal(sched.predict(Batch.of_spans(tiny_items, [(0, 10)])), tiny_items.dense[:10, 0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["batch_items=x"], "Error: 'batch_items' must be an integer in [0, 1024] (got 'x')"),
        (["batch_items=-4"], "Error: 'batch_items' must be an integer in [0, 1024] (got '-4')"),
        (["offload_items=128"], "Error: 'offload_items' needs an accelerator (got 128 with accelerator 'none')"),
        (["colour=red"], "Error: 'option' must be one of "
                         "['accelerator', 'batch_items', 'cpu_backend', 'offload_items', 'pin', 'pool'] "
                         "for backend 'deeprecsched' or of ['dense', 'rows'] for its cpu_backend 'torch-cpu' (got 'colour')"),
        (["dense=int4"], "Error: 'dense' must be one of ['bf16', 'int8'] (got 'int4')"),
        (["dense=bf16"], "Error: 'dense' applies only with --precision int8 (got --precision fp32)"),
        (["cpu_backend=onnxruntime", "dense=bf16"], "Error: 'option' must be one of "
                         "['accelerator', 'batch_items', 'cpu_backend', 'offload_items', 'pin', 'pool'] "
                         "for backend 'deeprecsched' or of ['allow_spinning', 'inter_op_threads', 'lowering', 'opt_level', "
                         "'provider', 'quantization'] for its cpu_backend 'onnxruntime' (got 'dense')"),
        (["pool=fibers"], "Error: 'pool' must be one of ['process', 'thread'] (got 'fibers')"),
        (["cpu_backend=deeprecsched"],
         f"Error: 'cpu_backend' must be one of {sorted(set(REGISTRY) - {'deeprecsched'})} (got 'deeprecsched')"),
    ],
)
def test_bad_scheduler_options_are_refused(runner: CliRunner, tmp_path: Path, options: list[str], message: str) -> None:
    args = [a for o in options for a in ("--option", o)]
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "deeprecsched", "--scenario", "server",
                                 "--output", str(tmp_path), *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_tune_refuses_a_backend_it_cannot_tune(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["tune", *SMOKE, "--backend", "torch-cpu", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: 'backend' must be one of ['deeprecsched'] (got 'torch-cpu')"


def test_a_worker_killed_mid_run_fails_its_queries_and_the_run(runner: CliRunner, tmp_path: Path) -> None:
    run_dir = tmp_path / "killtest" / "dlrm-rmc1" / "Server" / "performance" / "run_1"
    killed: list[int] = []

    def kill_one_worker_once_loadgen_runs() -> None:
        deadline = time.monotonic() + 120
        while not (run_dir / "mlperf_log_detail.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        for p in multiprocessing.active_children():
            if p.name == "recsuite-cpu-worker-0" and p.pid is not None:
                os.kill(p.pid, signal.SIGKILL)
                killed.append(p.pid)

    killer = threading.Thread(target=kill_one_worker_once_loadgen_runs, daemon=True)
    killer.start()
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "deeprecsched", "--scenario", "server", "--threads", "2",
                                 "--target-qps", "150", "--option", "batch_items=32", "--system", "killtest",
                                 "--output", str(tmp_path)])
    killer.join()
    assert killed, "no worker to kill"
    assert result.exit_code == 1
    error = result.stderr.strip()
    assert error.startswith("Error: run invalid: backend raised ")
    assert f"BackendError: CPU worker 0 (pid {killed[0]}) died (killed by SIGKILL) with " in error
    data = json.loads((run_dir / "result.json").read_text())
    assert data["status"] == "failed" and data["valid"] is False
    assert data["backend"]["dead_workers"] == [error[error.index("CPU worker 0"):error.index(" (logs kept")]]
    # Queries before the death were answered, the rest failed fast; LoadGen got every query back.
    assert 1 <= data["harness"]["backend_errors"] < data["harness"]["completed_queries"]
    assert data["harness"]["completed_queries"] == data["performance"]["query_count"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("tune")
    result = CliRunner().invoke(cli, ["tune", *SMOKE, "--sla-ms", "50", "--threads", "2", "--batch-sizes", "32,256",
                                      "--search-seconds", "0.5", "--confirm-seconds", "1", "--system", "tunetest",
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("dlrm-rmc1 deeprecsched p95 <= 50 ms on 2 CPU workers: tuned B=")
    return out / "tunetest" / "dlrm-rmc1" / "tune"


def test_tune_returns_a_setting_a_trace_and_a_plot(tuned: Path) -> None:
    data = json.loads((tuned / "tuned.json").read_text())
    assert data["backend"] == "deeprecsched" and data["threads"] == 2
    assert data["options"]["batch_items"] in ("0", "32", "256") and data["options"]["offload_items"] == "0"
    assert data["sla_ms"] == 50 and data["percentile"] == 95
    assert data["tuned"]["qps"] > 0 and data["static"]["qps"] > 0
    # Never below the static baseline it measured; what the confirming runs turned down is listed.
    assert data["tuned"]["qps"] >= data["cpu_only"]["qps"] >= data["static"]["qps"]
    assert isinstance(data["rejected"], list) and data["precision"] == "fp32"
    assert [c["batch_items"] for c in data["climb"]["batch"]] in ([32], [32, 256])
    with (tuned / "trace.csv").open() as fh:
        trace = list(csv.DictReader(fh))
    assert len(trace) == data["runs"]
    # (no "confirm-cpu" run when the static setting won: it is confirmed once, as the baseline)
    assert {r["phase"] for r in trace} >= {"static", "batch", "confirm-static"}
    assert all(r["passed"] in ("True", "False") and float(r["tail_latency_ms"]) > 0 for r in trace)
    # Every search bracket has a passing and a failing run, unless the search ran off its end.
    assert any(r["passed"] == "True" for r in trace) and any(r["passed"] == "False" for r in trace)
    assert (tuned / "qps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((tuned / "runs").iterdir())) == len(trace)


def test_every_tune_run_leaves_its_record(tuned: Path) -> None:
    """Every LoadGen run of the tune went through the runner: its folder holds LoadGen's logs and a
    ``result.json`` that reads back as a record and says which setting ran at which target."""
    from suite.record import read_result

    with (tuned / "trace.csv").open() as fh:
        trace = list(csv.DictReader(fh))
    folders = sorted((tuned / "runs").iterdir())
    assert len(folders) == len(trace)
    for row, folder in zip(trace, folders, strict=True):
        assert folder.name == f"{int(row['run']):03d}-{row['phase']}-B{row['batch_items']}-Q{row['offload_items']}"
        read_result(folder / "result.json")  # a valid record
        data = json.loads((folder / "result.json").read_text())
        assert data["status"] in ("valid", "invalid") and data["errors"] == []
        assert data["settings"]["target_qps"] == pytest.approx(float(row["target_qps"]))
        assert data["config"]["scenario"] == "Server"
        assert dict(data["config"]["backend_options"])["batch_items"] == row["batch_items"]
        assert data["backend"]["scheduler"]["batch_items"] == int(row["batch_items"])
        assert data["harness"]["completed_queries"] == int(row["queries"])
        assert (folder / "config.json").is_file() and (folder / "mlperf_log_detail.txt").is_file()


def test_the_tuned_file_round_trips_into_suite_run(tuned: Path, runner: CliRunner, tmp_path: Path) -> None:
    setting = json.loads((tuned / "tuned.json").read_text())
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "deeprecsched", "--tuned", str(tuned / "tuned.json"),
                                 "--scenario", "server", "--mode", "accuracy", "--target-qps", "100",
                                 "--system", "roundtrip", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "roundtrip/dlrm-rmc1/Server/accuracy/result.json").read_text())
    sched = data["backend"]["scheduler"]
    assert sched == {**SchedConfig(cpu_workers=2).to_dict(), "batch_items": int(setting["options"]["batch_items"])}
    # Requests cut from the shared-memory dataset score exactly like the reference model.
    assert data["accuracy"]["passed"] and data["accuracy"]["auc"] == pytest.approx(data["accuracy"]["reference_auc"][0], abs=1e-4)
    assert data["harness"]["max_batch_items"] == 1 and data["harness"]["workers"] == 4


def test_a_tuned_file_for_another_model_is_refused(tuned: Path, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["run", "--model", "dlrm-rmc3", "--scale", "tiny", "--backend", "deeprecsched",
                                 "--tuned", str(tuned / "tuned.json"), "--scenario", "server", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: 'tuned' file {str(tuned / 'tuned.json')!r} was tuned for dlrm-rmc1 (got --model dlrm-rmc3)"
    )


def test_a_tuned_file_for_another_scale_or_precision_warns_and_is_recorded(
    tuned: Path, runner: CliRunner, tmp_path: Path
) -> None:
    setting = json.loads((tuned / "tuned.json").read_text())
    assert (setting["model"]["scale"], setting["precision"]) == ("tiny", "fp32")
    other = tmp_path / "tuned-small.json"
    other.write_text(json.dumps({**setting, "model": {**setting["model"], "scale": "small"}, "precision": "bf16"}))
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "deeprecsched", "--tuned", str(other), "--scenario", "offline",
                                 "--system", "warned", "--output", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    line = (f"'tuned' file {str(other)!r} was tuned at scale small (this run: tiny), precision bf16 (this run: fp32): "
            "its setting may not be the best here")  # fmt: skip
    assert result.stderr.splitlines() == [f"warning: {line}"]
    for name in ("config.json", "result.json"):
        recorded = json.loads((tmp_path / "warned/dlrm-rmc1/Offline/performance/run_1" / name).read_text())["tuned"]
        assert recorded["warning"] == line and recorded["scale"] == "small" and recorded["path"] == str(other)


@pytest.mark.parametrize(
    ("static", "cpu", "final", "chosen", "rejected"),
    [
        # The search preferred B=128, its confirming runs held 0.95x static: static is recommended.
        (100.0, (128, 0, 95.0), None, ((0, 0), (0, 0)), [(128, 0)]),
        (100.0, (128, 0, 110.0), None, ((128, 0), (128, 0)), []),
        # Offload confirmed below the CPU-only winner: the CPU-only winner is recommended.
        (100.0, (128, 0, 110.0), (128, 64, 105.0), ((128, 0), (128, 0)), [(128, 64)]),
        # Both below static: static for both.
        (100.0, (128, 0, 90.0), (128, 64, 99.0), ((0, 0), (0, 0)), [(128, 0), (128, 64)]),
        (100.0, (128, 0, 110.0), (128, 64, 150.0), ((128, 0), (128, 64)), []),
    ],
)
def test_tune_never_recommends_a_setting_below_what_it_replaces(
    static: float, cpu: tuple[int, int, float], final: tuple[int, int, float] | None,
    chosen: tuple[tuple[int, int], tuple[int, int]], rejected: list[tuple[int, int]],
) -> None:
    s = Capacity(setting=setting(0, 0), qps=static, confirmed=True)
    c = Capacity(setting=setting(cpu[0], cpu[1]), qps=cpu[2], confirmed=True)
    f = c if final is None else Capacity(setting=setting(final[0], final[1]), qps=final[2], confirmed=True)
    got_cpu, got_final, got_rejected = never_below(s, c, f)
    assert (bq(got_cpu.setting), bq(got_final.setting)) == chosen
    assert [bq(r.setting) for r in got_rejected] == rejected
    assert got_final.qps >= got_cpu.qps >= static


def bq(value: Setting) -> tuple[int, int]:
    d = dict(value)
    return d["batch_items"], d["offload_items"]


class TableSearch:
    """The climb's decisions alone: each setting's capacity comes from a table instead of LoadGen runs."""

    tolerance = 0.1

    def __init__(self, table: dict[tuple[int, int], float]) -> None:
        self.table = table
        self.searches: list[tuple[int, int]] = []

    def first_target(self, value: Setting) -> float:
        return 1.0

    def search_qps(self, phase: str, value: Setting, start: float, factor: float) -> float:
        self.searches.append(bq(value))
        return self.table[bq(value)]


def table_climb(sizes: list[int], table: dict[tuple[int, int], float]) -> tuple[Climb, TableSearch]:
    search = TableSearch(table)
    return Climb(search, SchedConfig(cpu_workers=2, accelerator="torch-cuda"), sizes), search


SIZES = [90, 150, 170, 230, 300]  # the largest query has 300 items


def test_the_climb_stops_at_the_first_setting_worse_beyond_the_search_resolution() -> None:
    t, search = table_climb(SIZES, {(0, 0): 100, (32, 0): 80, (64, 0): 120, (128, 0): 110, (256, 0): 90, (512, 0): 500})
    t.capacity("static", 0, 0, 1, 2)
    best = t.climb("batch", [(b, 0) for b in (32, 64, 128, 256, 512)], 100)
    # 110 after 120 is within 10%: not worse, the walk goes on; 90 after 110 is worse: stop, keep the best.
    assert search.searches == [(0, 0), (32, 0), (64, 0), (128, 0), (256, 0)]
    assert (best.value("batch_items"), best.qps) == (64, 120)


def test_the_climb_reuses_a_setting_that_schedules_every_query_the_same() -> None:
    t, search = table_climb(SIZES, {(0, 0): 100, (256, 0): 130, (64, 256): 140, (64, 128): 200, (64, 1): 150, (64, 0): 135})
    t.capacity("static", 0, 0, 1, 2)
    # B = 512 keeps every query (<= 300 items) whole: the static setting, not searched again, and
    # worse than B = 256, so the walk stops before B = 1024.
    phase1 = t.climb("batch", [(256, 0), (512, 0), (1024, 0)], 100)
    assert search.searches == [(0, 0), (256, 0)] and (phase1.value("batch_items"), phase1.qps) == (256, 130)
    assert [(c.value("batch_items"), c.qps, c.same_as and bq(c.same_as)) for _, c in t.settled[2:]] == [(512, 100, (0, 0))]
    first = t.capacity("batch", 64, 0, 1, 2)
    # Q = 512 and 400 offload no query: the phase-1 setting again; 300 and 231 offload the same one query.
    phase2 = t.climb("offload", [(64, q) for q in (512, 400, 256, 231, 128, 1)], first.qps, first=first)
    assert search.searches[3:] == [(64, 256), (64, 128), (64, 1)]
    assert (phase2.value("offload_items"), phase2.qps) == (128, 200)


@pytest.mark.cuda
def test_queries_offloaded_to_torch_cuda_score_like_the_cpu_reference(tiny_items: Batch) -> None:
    items = tiny_items
    options = (("accelerator", "torch-cuda"), ("offload_items", "50"), ("batch_items", "32"))
    reference = get_backend("torch-cpu")(BackendConfig(model=TINY, threads=1))
    reference.load()
    spans = [(i * 997 % 15_000, i * 997 % 15_000 + size) for i, size in enumerate([49, 50, 300, 1024, 7, 600] * 8)]
    with DeepRecSchedBackend(BackendConfig(model=TINY, threads=2, options=options)) as sched:
        sched.load()
        sched.attach_items(items)
        answers: dict[int, np.ndarray] = {}

        def ask(i: int) -> None:
            answers[i] = sched.predict(Batch.of_spans(items, [spans[i]]))

        # Many callers at once, so offloaded queries meet in the accelerator's queue and run merged.
        callers = [threading.Thread(target=ask, args=(i,)) for i in range(len(spans))]
        for c in callers:
            c.start()
        for c in callers:
            c.join(60)
        assert sched.stats["accelerator_queries"] == 32 and sched.stats["cpu_queries"] == 16
    for i, span in enumerate(spans):
        np.testing.assert_allclose(answers[i], reference.predict(Batch.of_spans(items, [span])), rtol=1e-4, atol=1e-5)
