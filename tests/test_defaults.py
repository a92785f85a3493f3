"""Defaults that hold on a shared machine: the threads policy, ``--target-qps auto``, the warm-up
before LoadGen's clock, and the progress line's total and ETA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import smoke_config

from suite.backends import get_backend
from suite.backends.base import BackendConfig
from suite.backends.null import NullBackend
from suite.cli import cli
from suite.config import AUTO, Mode, RunConfig, Scenario, Settings, resolve
from suite.datasets.batch import Batch
from suite.errors import RunFailedError
from suite.harness import Outcome, Progress, eta_text, expected_queries
from suite.models import ModelSpec
from suite.results import read_detail
from suite.runner import HARNESS_QUERY_S, OFFLINE_PROBE_FACTOR, SHORT_PROBE_OFFLINE_FACTOR, Warmup, calibrated, run

CORES = len(os.sched_getaffinity(0))


@pytest.mark.parametrize("backend", ["torch-cpu", "onnxruntime"])
def test_cpu_backends_run_one_thread_per_worker_and_a_worker_per_core_outside_offline(backend: str) -> None:
    cls = get_backend(backend)
    assert cls.parallelism(Scenario.SERVER, 2, 0) == (1, 2)
    assert cls.parallelism(Scenario.SERVER, 16, 0) == (1, 16)
    assert cls.parallelism(Scenario.SINGLE_STREAM, 16, 0) == (1, 16)
    # --threads given: workers fill the remaining cores, never oversubscribing them.
    assert cls.parallelism(Scenario.SERVER, 16, 4) == (4, 4)
    assert cls.parallelism(Scenario.OFFLINE, 2, 8) == (8, 1)


def test_offline_torch_cpu_uses_a_team_of_every_core_and_onnxruntime_a_worker_per_core() -> None:
    assert get_backend("torch-cpu").parallelism(Scenario.OFFLINE, 2, 0) == (2, 1)
    assert get_backend("torch-cpu").parallelism(Scenario.OFFLINE, 16, 0) == (16, 1)
    assert get_backend("onnxruntime").parallelism(Scenario.OFFLINE, 2, 0) == (1, 2)
    assert get_backend("onnxruntime").parallelism(Scenario.OFFLINE, 16, 0) == (1, 16)


def test_other_backends_keep_a_thread_per_core_and_their_own_workers() -> None:
    assert NullBackend.parallelism(Scenario.SERVER, 8, 0) == (8, 1)
    sched = get_backend("deeprecsched")
    # DeepRecSched's --threads is its CPU worker processes (one core each): one per core by default.
    assert sched.parallelism(Scenario.SERVER, 8, 0) == (8, sched.default_workers)
    assert sched.parallelism(Scenario.SERVER, 8, 3) == (3, sched.default_workers)


def test_torch_cpu_server_run_records_its_policy(results: Path, data_dir: Path) -> None:
    result = run(smoke_config(results, backend="torch-cpu", scenario=Scenario.SERVER, target_qps=20.0))
    backend = result.data["backend"]
    assert backend["threads"] == 1 and backend["workers"] == CORES
    assert backend["parallelism"] == "default policy"
    assert backend["omp_wait_policy"]
    assert result.data["harness"]["workers"] == CORES
    explicit = run(smoke_config(results, backend="torch-cpu", scenario=Scenario.SERVER, target_qps=20.0, threads=2,
                                workers=1, overwrite=True))
    assert explicit.data["backend"]["threads"] == 2 and explicit.data["backend"]["workers"] == 1
    assert explicit.data["backend"]["parallelism"] == "set by --threads/--workers"


def _policy_after_import(env: dict[str, str]) -> str:
    code = "import os, suite.backends.torch_cpu; print(os.environ.get('OMP_WAIT_POLICY', '-'))"
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_torch_cpu_sets_passive_waiting_unless_the_user_chose() -> None:
    assert _policy_after_import({}) == "PASSIVE"
    assert _policy_after_import({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
    assert _policy_after_import({"GOMP_SPINCOUNT": "10000"}) == "-"


def _settings(model: str, scenario: Scenario, **changes: object):
    config = RunConfig(model=ModelSpec(name=model, scale="tiny"), backend="null", scenario=scenario, **changes)
    return resolve(config)


def test_target_qps_source_by_scenario_and_rule_table() -> None:
    # Offline: always calibrated unless given; the table's number stays as the placeholder.
    offline = _settings("dlrm-rmc1", Scenario.OFFLINE)
    assert (offline.target_qps_source, offline.target_qps) == (AUTO, 2000.0)
    # Server: the table names dlrm-rmc1's target; dlrm-v2 has only mlperf.conf's placeholder of 1.
    assert (_settings("dlrm-rmc1", Scenario.SERVER).target_qps_source, _settings("dlrm-rmc1", Scenario.SERVER).target_qps) == ("rules", 300.0)
    assert _settings("dlrm-v2", Scenario.SERVER).target_qps_source == AUTO
    assert _settings("dlrm-rmc1", Scenario.SERVER, target_qps=AUTO).target_qps_source == AUTO
    given = _settings("dlrm-v2", Scenario.SERVER, target_qps=42.0)
    assert (given.target_qps_source, given.target_qps) == ("cli", 42.0)
    # Nothing to calibrate: an Offline accuracy run issues every query once; SingleStream has no QPS.
    assert _settings("dlrm-rmc1", Scenario.OFFLINE, mode=Mode.ACCURACY).target_qps_source == "rules"
    assert _settings("dlrm-rmc1", Scenario.SINGLE_STREAM, target_qps=AUTO).target_qps_source == "rules"


def test_offline_auto_on_the_null_backend_is_valid_and_recorded(results: Path, data_dir: Path) -> None:
    result = run(smoke_config(results))  # Offline, no --target-qps: auto
    data = result.data
    assert data["valid"] is True
    cal = data["calibration"]
    # The smoke profile's probe is 0.1 s: short, so the run is sized for twice its peak.
    assert cal["target_qps_source"] == AUTO and cal["factor"] == SHORT_PROBE_OFFLINE_FACTOR
    assert cal["probe_s"] > 0 and cal["probe_items_per_s"] > 0
    assert cal["probe_peak_items_per_s"] > 0
    per_query_s = cal["mean_query_items"] / cal["probe_peak_items_per_s"] + HARNESS_QUERY_S
    assert cal["target_qps"] == data["settings"]["target_qps"] == pytest.approx(SHORT_PROBE_OFFLINE_FACTOR / per_query_s, rel=1e-3)
    assert data["warmup"]["probe_batches"] > 0
    config_json = json.loads((result.path / "config.json").read_text())
    assert config_json["calibration"] == cal and config_json["settings"]["target_qps"] == cal["target_qps"]
    # LoadGen was told the calibrated number, and the run's own rate is within a factor of it. The
    # null backend costs nothing, so its run's rate is LoadGen's alone, which the probe counts only
    # as a floor of HARNESS_QUERY_S a query (2 to 26 us a query in all on a 2-core machine, quiet
    # or loaded): the expected QPS overshoots, which makes the run longer, never INVALID.
    assert read_detail(result.path / "mlperf_log_detail.txt").get("effective_target_qps") == pytest.approx(cal["target_qps"])
    measured = data["performance"]["metric"]["value"]
    assert 1 / 2 < cal["target_qps"] / measured < 24


def test_cli_target_qps_accepts_auto_and_refuses_words(runner, results: Path) -> None:
    args = ["run", "--model", "dlrm-rmc1", "--scale", "tiny", "--backend", "null", "--scenario", "server",
            "--profile", "smoke", "--no-progress", "--output", str(results)]
    bad = runner.invoke(cli, [*args, "--target-qps", "fast"])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "Error: 'target-qps' must be a finite number in (0, 100000000] or 'auto' (got 'fast')"
    good = runner.invoke(cli, [*args, "--target-qps", "auto"])
    assert good.exit_code == 0, good.output
    data = json.loads(next(results.rglob("result.json")).read_text())
    assert data["calibration"]["target_qps_source"] == AUTO and data["settings"]["target_qps_source"] == AUTO
    # The record keeps the word the user gave; every reader still reads the run (make run's Server).
    assert data["config"]["target_qps"] == AUTO
    summary = runner.invoke(cli, ["summary", str(results)])
    assert summary.exit_code == 0 and summary.stderr == "" and "damaged" not in summary.stdout
    check = runner.invoke(cli, ["check", str(next(results.rglob("result.json")).parent)])
    assert "record.invalid" not in check.output


class RecordingBackend(NullBackend):
    """The null backend, noting the thread and size of every call (this test only)."""

    def load(self) -> None:
        super().load()
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def predict(self, batch: Batch) -> np.ndarray:
        with self._lock:
            self.calls.append((threading.current_thread().name, len(batch)))
        return super().predict(batch)


def test_warm_up_runs_the_largest_batch_on_every_worker_before_loadgen(results: Path, data_dir: Path) -> None:
    config = smoke_config(results, scenario=Scenario.SERVER, target_qps=500.0, workers=2, max_batch_items=600)
    backend = RecordingBackend(BackendConfig(model=config.model))
    result = run(config, backend=backend)
    warm = result.data["warmup"]
    assert warm["workers"] == 2 and warm["batches"] == 4 and warm["probe_batches"] == 0
    assert warm["seconds"] >= 0 and warm["items"] > 0
    assert result.data["calibration"] == {"target_qps_source": "cli"}
    first = backend.calls[: warm["batches"]]
    # Worker 0 is the calling thread, as in the harness; the largest batch is the harness's limit.
    assert {name for name, _ in first} == {threading.current_thread().name, "recsuite-warmup-1"}
    assert max(n for _, n in first) == warm["largest_batch_items"]
    assert warm["largest_batch_items"] <= 600
    assert sum(n for _, n in first) == warm["items"]
    # The run's own calls follow: the harness answered every query after the warm-up.
    assert len(backend.calls) == warm["batches"] + result.data["harness"]["batches"]


def test_a_steady_probe_sizes_offline_for_a_run_faster_than_its_peak() -> None:
    """Offline's auto target after a 2-s probe: a run that outpaces the probe's peak by 1.25x (a
    `make run` on a 2-core machine with one core busy: peak 114,385 items/s, run 142,955) still
    issues enough queries for its minimum duration, where a factor of 1.1 ended it at 58 s of 60."""
    offline = _settings("dlrm-rmc1", Scenario.OFFLINE, profile="short")
    peak, mean_items = 114_385.0, 165.9
    probe = Warmup(batches=107, items=210_480, seconds=2.06, workers=1, largest_batch_items=1994, probe_s=2.01,
                   probe_items_per_s=102_585.0, probe_peak_items_per_s=peak)
    sized, record = calibrated(offline, probe, mean_items)
    assert record["factor"] == OFFLINE_PROBE_FACTOR and sized.target_qps == record["target_qps"]
    queries = expected_queries(sized, 1_000_000)
    assert queries is not None
    run_s = queries / (1.25 * peak / mean_items)
    assert run_s >= sized.min_duration_ms / 1000
    assert run_s < 2 * sized.min_duration_ms / 1000  # and the run is not made needlessly long


def test_offline_on_lanes_of_one_device_is_sized_by_the_probes_mean() -> None:
    """A backend that declared its batching (torch-cuda's lanes, taking turns on one GPU): Offline's
    auto target comes from the probe's mean rate, not its peak (each lane's fastest spans times the
    lanes). The H200's DLRM-v2 probe: mean 20.6 M items/s, peak 30.6 M, the run 20.3 M; sized by the
    peak, a 60-s Offline ran 132 s; by the mean it lasts under 1.6x its minimum, and still its minimum
    for a run up to 1.2x faster than the probe."""
    offline = _settings("dlrm-v2", Scenario.OFFLINE, profile="short")
    mean_items, run_items_per_s = 270.25, 20_292_447.0
    probe = Warmup(batches=967, items=42_466_868, seconds=2.06, workers=8, largest_batch_items=65_500, probe_s=2.01,
                   probe_items_per_s=20_630_857.0, probe_peak_items_per_s=30_597_032.0)
    by_peak, _ = calibrated(offline, probe, mean_items)
    sized, record = calibrated(offline, probe, mean_items, shared_device=True)
    assert record["probe_rate"] == "mean: lanes onto one device" and record["factor"] == OFFLINE_PROBE_FACTOR
    assert sized.target_qps == float(f"{1 / (mean_items / probe.probe_items_per_s + HARNESS_QUERY_S) * OFFLINE_PROBE_FACTOR:.4g}")
    minimum_s = sized.min_duration_ms / 1000

    def lasts_s(settings: Settings, items_per_s: float) -> float:
        queries = expected_queries(settings, 10**9)
        assert queries is not None
        return queries / (items_per_s / mean_items)

    assert lasts_s(by_peak, run_items_per_s) > 2 * minimum_s
    assert minimum_s <= lasts_s(sized, run_items_per_s) < 1.6 * minimum_s
    assert lasts_s(sized, 1.2 * probe.probe_items_per_s) >= minimum_s


def test_expected_queries_follow_loadgen() -> None:
    offline = _settings("dlrm-rmc1", Scenario.OFFLINE, profile="short")
    assert expected_queries(offline, 1000) == 2000 * 60 * 1.1  # LoadGen's 1.1 x QPS x min duration
    server = _settings("dlrm-rmc1", Scenario.SERVER, profile="short")
    assert expected_queries(server, 1000) == 300 * 60
    assert expected_queries(_settings("dlrm-v2", Scenario.SERVER, profile="short", target_qps=1.0), 1000) == 1024
    assert expected_queries(_settings("dlrm-rmc1", Scenario.OFFLINE, mode=Mode.ACCURACY), 777) == 777
    assert expected_queries(_settings("dlrm-rmc1", Scenario.SINGLE_STREAM), 777) is None


def test_progress_line_shows_the_total_and_an_eta_from_the_rate() -> None:
    assert eta_text(0, 132_000, 0.5, 66.0) == "about 66 s left (estimated from the settings)"
    # A run slower than its settings: 200 s for a third of the queries, so 400 s more, not "0 s".
    assert eta_text(44_000, 132_000, 200.0, 66.0) == "about 7 min left"
    assert eta_text(1_000, 2_000, 30.0, 66.0) == "about 30 s left"
    assert eta_text(2_000, 2_000, 30.0, 66.0) == "finishing"
    assert eta_text(5_000, None, 90.0, 60.0) == "past the settings' estimate, waiting for LoadGen"
    outcome = Outcome(completed_queries=44_000, completed_items=7_300_000)
    line = Progress(outcome, 66.0, 132_000, enabled=False).line(elapsed=200.0)
    assert line == "  44,000/132,000 queries, 7,300,000 items, 200 s elapsed, about 7 min left"


class AlwaysFailing(NullBackend):
    """Raises on every call (this test only)."""

    def predict(self, batch: Batch) -> np.ndarray:
        raise RuntimeError("device lost")


def test_a_backend_failing_in_the_warm_up_still_meets_loadgen_and_keeps_the_table_target(results: Path, data_dir: Path) -> None:
    config = smoke_config(results)  # Offline: auto
    with pytest.raises(RunFailedError, match="RuntimeError: device lost"):
        run(config, backend=AlwaysFailing(BackendConfig(model=config.model)))
    data = json.loads((config.run_dir() / "result.json").read_text())
    assert data["warmup"]["errors"] == data["warmup"]["batches"] > 0
    assert data["warmup"]["first_error"] == "RuntimeError: device lost"
    cal = data["calibration"]
    assert cal["fallback"] == "the probe failed (RuntimeError: device lost); kept the rule table's number"
    assert cal["target_qps"] == data["settings"]["target_qps"] == 2000.0
    assert (config.run_dir() / "mlperf_log_detail.txt").is_file()  # LoadGen ran and kept its logs
