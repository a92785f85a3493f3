"""Placement: local worker processes behind one LoadGen (``--processes``, ``--devices``), a killed
worker, and the options' errors. The placed workers run the real torch-cpu backend."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_placement_scores_like

from suite.backends import get_backend
from suite.backends.base import BackendConfig
from suite.cli import cli
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.store import Dataset
from suite.errors import ConfigError
from suite.models import ModelSpec
from suite.placement import WorkerLost, get_placement
from suite.placement.backend import cpu_specs, gpu_specs, parse_devices
from suite.placement.local import ProcessPlacement

TINY = ModelSpec(name="dlrm-rmc1", scale="tiny")
SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--no-progress"]


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return Dataset.load(synthetic.ensure(TINY, 4096, tmp_path_factory.mktemp("placement-data"))).items


@pytest.fixture(scope="module")
def two_workers(items: Batch) -> Iterator[ProcessPlacement]:
    placement = ProcessPlacement()
    placement.start(cpu_specs("torch-cpu", BackendConfig(model=TINY, threads=1), 2))
    placement.attach(items)
    yield placement
    placement.close()


def test_placed_scores_equal_single_process_scores(two_workers: ProcessPlacement, items: Batch) -> None:
    reference = get_backend("torch-cpu")(BackendConfig(model=TINY, threads=1))
    reference.load()
    assert_placement_scores_like(two_workers, items, reference, rows_worker=1)
    reference.close()


def test_round_trip_and_info(two_workers: ProcessPlacement) -> None:
    assert two_workers.submit(0, []).result(timeout=60).shape == (0,)  # a ping predicts nothing
    trip = two_workers.measure_round_trip(pings=5)
    assert 0 < trip.median_us <= trip.p99_us and trip.pings == 5
    info = two_workers.info().to_dict()
    assert (info["name"], info["nodes"], info["devices_per_node"]) == ("processes", 1, 2)
    assert info["workers"] == ["CPU worker 0", "CPU worker 1"] and info["lost_workers"] == []
    assert [w["name"] for w in two_workers.worker_info] == ["torch-cpu", "torch-cpu"]


def test_thread_placement_is_registered_and_answers(items: Batch) -> None:
    placement = get_placement("threads")()
    placement.start(cpu_specs("null", BackendConfig(model=TINY, threads=1), 2))
    try:
        placement.attach(items)
        np.testing.assert_array_equal(placement.submit(1, [[(0, 5)]]).result(timeout=10), np.zeros(5, np.float32))
        assert placement.outstanding() == [0, 0] and placement.dead() == []
    finally:
        placement.close()


def test_a_placed_backend_tells_every_worker_that_a_run_begins(monkeypatch: pytest.MonkeyPatch) -> None:
    """``begin_run`` (the harness calls it as LoadGen starts) reaches each worker's backend once,
    so what a worker measures per run (torch-cuda's timeline) covers that run on every device."""
    from suite.backends.null import NullBackend
    from suite.placement.backend import PlacedBackend

    told: list[int] = []
    monkeypatch.setattr(NullBackend, "begin_run", lambda self: told.append(id(self)))
    inner = BackendConfig(model=TINY, threads=1)
    placed = PlacedBackend("null", inner, get_placement("threads")(), cpu_specs("null", inner, 3))
    placed.load()
    try:
        placed.begin_run()
    finally:
        placed.close()
    assert len(told) == 3


def test_a_placed_backends_info_is_its_workers_now_not_at_start() -> None:
    """The result records a placed backend's info after the run: asked of its first worker then
    (torch-cuda counts its jagged graph replays and staged batches as it runs), not what the worker
    said when it started."""
    from suite.placement.backend import PlacedBackend

    placement = get_placement("threads")()
    config = BackendConfig(model=TINY, threads=1)
    placed = PlacedBackend("null", config, placement, cpu_specs("null", config, 1))
    placed.load()
    try:
        assert "latency_us" not in placed.info().extra
        placement._backends[0]._latency_s = 0.002  # type: ignore[attr-defined]  # the worker's state moves on after it started
        assert placed.info().extra["latency_us"] == 2000
        assert "latency_us" not in placement.worker_info[0]
    finally:
        placed.close()


def _run(runner: CliRunner, tmp_path: Path, scenario: str, *extra: str) -> tuple[int, str, dict]:
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "torch-cpu", "--scenario", scenario, "--processes", "2",
                                 "--system", "placed", "--output", str(tmp_path), *extra])
    run_dir = tmp_path / "placed" / "dlrm-rmc1" / scenario.capitalize() / "performance" / "run_1"
    return result.exit_code, result.stderr, json.loads((run_dir / "result.json").read_text())


@pytest.mark.parametrize(("scenario", "qps"), [("offline", "2000"), ("server", "100")])
def test_processes_complete_every_scenario(runner: CliRunner, tmp_path: Path, scenario: str, qps: str) -> None:
    code, err, data = _run(runner, tmp_path, scenario, "--target-qps", qps)
    assert data["errors"] == [] and data["harness"]["backend_errors"] == 0, err
    assert data["status"] in ("valid", "invalid") and code in (0, 1)  # INVALID only if the loaded box is slow
    if scenario == "server":  # Offline's one query holds every sample
        assert data["harness"]["completed_queries"] == data["performance"]["query_count"]
    assert data["harness"]["completed_queries"] > 0
    assert data["config"]["processes"] == 2
    p = data["placement"]
    assert (p["name"], p["nodes"], p["devices_per_node"], p["lost_workers"]) == ("processes", 1, 2, [])
    assert p["round_trip_us"]["median_us"] > 0
    assert data["backend"]["name"] == "torch-cpu" and data["backend"]["placed_workers"] == 2


def test_a_killed_worker_fails_its_queries_and_names_itself(runner: CliRunner, tmp_path: Path) -> None:
    run_dir = tmp_path / "placed" / "dlrm-rmc1" / "Server" / "performance" / "run_1"
    killed: list[int] = []
    before = {p.pid for p in multiprocessing.active_children()}  # another test's workers live on

    def kill_worker_0_once_loadgen_runs() -> None:
        deadline = time.monotonic() + 120
        while not (run_dir / "mlperf_log_detail.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        for p in multiprocessing.active_children():
            if p.name == "recsuite-cpu-worker-0" and p.pid is not None and p.pid not in before:
                os.kill(p.pid, signal.SIGKILL)
                killed.append(p.pid)

    killer = threading.Thread(target=kill_worker_0_once_loadgen_runs, daemon=True)
    killer.start()
    code, err, data = _run(runner, tmp_path, "server", "--target-qps", "150")
    killer.join()
    assert killed, "no worker to kill"
    assert code == 1
    death = f"CPU worker 0 (pid {killed[0]}) died (killed by SIGKILL) with "
    assert err.startswith("Error: run invalid: backend raised ") and f"WorkerLost: {death}" in err
    assert data["status"] == "failed" and data["valid"] is False
    assert len(data["placement"]["lost_workers"]) == 1 and data["placement"]["lost_workers"][0].startswith(death)
    # LoadGen got every query back, the ones after the death failed fast; the logs stay.
    assert data["harness"]["completed_queries"] == data["performance"]["query_count"]
    assert 1 <= data["harness"]["backend_errors"] <= data["harness"]["completed_queries"]
    assert not list(run_dir.glob("*.tmp*"))


def test_a_dead_placement_fails_later_requests_at_once(items: Batch) -> None:
    placement = ProcessPlacement()
    placement.start(cpu_specs("null", BackendConfig(model=TINY, threads=1), 1))
    try:
        placement.attach(items)
        os.kill(placement.pids()[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not placement.dead() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert placement.dead()[0].startswith("CPU worker 0 (pid ")
        with pytest.raises(WorkerLost, match=r"^CPU worker 0 \(pid \d+\) died \(killed by SIGKILL\)"):
            placement.submit(0, [[(0, 4)]]).result(timeout=10)
    finally:
        placement.close()


def test_a_concurrent_worker_overlaps_its_requests(items: Batch) -> None:
    """A worker with concurrency 4 runs four 300-ms requests at once (a GPU worker's lanes)."""
    config = BackendConfig(model=TINY, threads=1, options=(("latency_us", "300000"),))
    spec = dataclasses.replace(cpu_specs("null", config, 1)[0], concurrency=4)
    placement = ProcessPlacement()
    placement.start([spec])
    try:
        placement.attach(items)
        t0 = time.perf_counter()
        futures = [placement.submit(0, [[(i, i + 3)]]) for i in range(4)]
        assert [f.result(timeout=30).shape for f in futures] == [(3,)] * 4
        assert time.perf_counter() - t0 < 1.0  # in order it would take 1.2 s
    finally:
        placement.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "torch-cuda", "--devices", "x"],
         "Error: 'devices' must be all, a count N in [1, 1024], GPU indices like 0,2 or in-process (got 'x')"),
        (["--backend", "torch-cuda", "--devices", "0"],
         "Error: 'devices' must be all, a count N in [1, 1024], GPU indices like 0,2 or in-process (got '0')"),
        (["--backend", "torch-cuda", "--devices", "0,0"], "Error: 'devices' names cuda:0 twice (got '0,0')"),
        (["--backend", "torch-cpu", "--devices", "2"], "Error: 'devices' needs a GPU backend (got 'torch-cpu', which runs on cpu)"),
        (["--backend", "torch-cuda", "--devices", "2", "--processes", "2"],
         "Error: 'devices' and 'processes' cannot be combined (--devices already runs one process per GPU)"),
        (["--backend", "deeprecsched", "--processes", "2"],
         "Error: 'processes' is for CPU backends (got 'deeprecsched'; use --threads for its CPU workers)"),
        (["--backend", "torch-cpu", "--processes", "0"], "Error: 'processes' must be an integer in [1, 1024] (got '0')"),
    ],
)
def test_bad_placement_options_are_refused(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["run", *SMOKE, "--scenario", "offline", "--output", str(tmp_path), *args])
    assert (result.exit_code, result.stderr.strip()) == (2, message)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_devices_against_the_gpus_a_host_has() -> None:
    assert parse_devices("all", 2) == (0, 1) and parse_devices("1", 2) == (0,) and parse_devices("0, 1", 2) == (0, 1)
    for text, count, message in [
        ("3", 2, "'devices' asks for 3 GPU(s) but this host has 2"),
        ("0,2", 2, "'devices' names cuda:2 but this host has 2 GPU(s) (cuda:0..cuda:1)"),
        ("all", 0, "'devices' all found no CUDA GPU on this host"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_devices(text, count)
        assert str(err.value) == message


def test_each_gpu_worker_builds_the_backend_on_its_own_device() -> None:
    specs = gpu_specs("torch-cuda", BackendConfig(model=TINY, options=(("device", "cuda:0"), ("lanes", "2"))), (0, 2))
    assert [s.name for s in specs] == ["GPU worker 0 (cuda:0)", "GPU worker 1 (cuda:2)"]
    assert [s.config.options for s in specs] == [(("lanes", "2"), ("device", "cuda:0")), (("lanes", "2"), ("device", "cuda:2"))]
    assert [s.slug for s in specs] == ["gpu-worker-0-cuda-0", "gpu-worker-1-cuda-2"]


@pytest.mark.cuda
def test_two_gpus_give_the_scores_of_one(items: Batch) -> None:
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 GPUs")
    config = BackendConfig(model=TINY, precision="fp32")
    placement = ProcessPlacement()
    placement.start(gpu_specs("torch-cuda", config, (0, 1)))
    try:
        placement.attach(items)
        a = placement.submit(0, [[(0, 1000)]]).result(timeout=120)
        b = placement.submit(1, [[(0, 1000)]]).result(timeout=120)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        assert [w["device"] for w in placement.worker_info][0] == placement.worker_info[1]["device"]
    finally:
        placement.close()


@pytest.mark.parametrize(
    ("backend", "scenario", "options", "gpus", "devices"),
    [
        ("torch-cuda", "server", {}, 1, "all"),
        ("torch-cuda", "offline", {}, 2, "all"),
        ("torch-cuda", "singlestream", {}, 1, None),  # one query in flight: the round trip would only add latency
        ("torch-cuda", "server", {"devices": "in-process"}, 1, "in-process"),
        ("torch-cuda", "server", {"devices": "1"}, 2, "1"),
        ("torch-cuda", "server", {}, 0, None),  # no GPU: the backend's own load says why
        ("torch-cpu", "server", {}, 1, None),
        ("deeprecsched", "server", {}, 1, None),
    ],
)
def test_a_gpu_backend_runs_one_process_per_gpu_unless_told(
    monkeypatch: pytest.MonkeyPatch, backend: str, scenario: str, options: dict[str, str], gpus: int, devices: str | None
) -> None:
    """Offline and Server on a GPU backend place one worker process per visible GPU by default (in
    the driver the lanes contend with LoadGen's issue thread for the GIL: measured INVALID in
    Server at 0.9x Offline, VALID in a worker process); ``--devices in-process`` keeps it here."""
    from suite.config import RunConfig, Scenario
    from suite.placement import backend as placement_backend
    from suite.placement import placed_here

    monkeypatch.setattr(placement_backend, "cuda_device_count", lambda: gpus)
    config = RunConfig(model=TINY, backend=backend, scenario=Scenario.parse(scenario), devices=options.get("devices"))
    chosen = placement_backend.default_devices(config, get_backend(backend))
    assert chosen.devices == devices
    assert placed_here(chosen) == (devices not in (None, "in-process"))


def test_in_process_places_no_worker() -> None:
    with pytest.raises(ConfigError) as err:
        parse_devices("in-process", 1)
    assert str(err.value) == "'devices' in-process places no worker (the backend runs in this process)"


@pytest.mark.cuda
@pytest.mark.parametrize(("extra", "placement"), [((), "processes"), (("--devices", "in-process"), "threads")])
def test_torch_cuda_server_places_itself_by_default(runner: CliRunner, tmp_path: Path, extra: tuple[str, ...], placement: str) -> None:
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "torch-cuda", "--scenario", "server", "--target-qps", "100",
                                 "--system", "gpu", "--output", str(tmp_path), *extra])
    run_dir = tmp_path / "gpu" / "dlrm-rmc1" / "Server" / "performance" / "run_1"
    data = json.loads((run_dir / "result.json").read_text())
    assert result.exit_code == 0, result.stderr
    assert data["placement"]["name"] == placement
    assert data["config"]["devices"] == (extra[1] if extra else "all")


def test_placed_server_answers_a_batch_at_once_from_the_collector(runner: CliRunner, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The path a GPU backend takes by default (a worker process): every batch is answered with one
    ``QuerySamplesComplete`` holding all its queries, from the placement's collector thread, while
    one thread forms batches. Answering per query, or a harness thread per batch in flight waiting
    on its round trip (the path before), breaks it. LoadGen is real; the counter passes every call on."""
    from suite import harness

    real = harness.lg.QuerySamplesComplete
    calls: list[tuple[str, int, list[str]]] = []

    def counted(responses: list, *rest: object) -> None:
        extra = [t.name for t in threading.enumerate() if t.name.startswith("recsuite-worker")]
        calls.append((threading.current_thread().name, len(responses), extra))
        real(responses, *rest)

    monkeypatch.setattr(harness.lg, "QuerySamplesComplete", counted)
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "null", "--scenario", "server", "--processes", "1",
                                 "--workers", "4", "--target-qps", "1000", "--batch-timeout-us", "20000",
                                 "--system", "placed", "--output", str(tmp_path)])
    run_dir = tmp_path / "placed" / "dlrm-rmc1" / "Server" / "performance" / "run_1"
    data = json.loads((run_dir / "result.json").read_text())
    h = data["harness"]
    assert data["errors"] == [] and h["backend_errors"] == 0, result.stderr
    assert len(calls) == h["batches"]  # one call a batch
    assert sum(n for _, n, _ in calls) == h["completed_queries"] == data["performance"]["query_count"]
    assert h["completed_queries"] >= 3 * h["batches"]  # a 20-ms wait at 1,000 queries/s holds about 20
    # From the collector; a batch whose answer came back before the harness added its callback is
    # answered at once on the thread that submitted it (concurrent.futures runs a callback added to a
    # done future there): under load that happens. Never from a harness thread of its own.
    names = [name for name, _, _ in calls]
    assert "recsuite-collector" in names
    assert all(name == "recsuite-collector" or not name.startswith("recsuite-") for name in names), names
    assert all(extra == [] for _, _, extra in calls)  # no harness thread beside the one forming batches
    assert data["placement"]["name"] == "processes"


@pytest.mark.parametrize("gpus", [1, 2])
def test_placed_batch_defaults_keep_the_batches_in_flight_of_each_worker(gpus: int) -> None:
    """A placed backend declares worker 0's batcher for all its workers: the workers and the
    batches in flight (a modelled device holds 2) both times the worker count; dropping the batches
    in flight would let a backlog queue small batches in front of every device."""
    from suite.placement.backend import PlacedBackend

    config = BackendConfig(model=TINY, options=(("batch_us", "100"), ("item_ns", "30")))
    placement = get_placement("threads")()
    backend = PlacedBackend("null", config, placement, cpu_specs("null", config, gpus))
    backend.load()
    try:
        one = get_backend("null")(config)
        one.load()
        alone = one.batch_defaults("Server", 5_000_000)
        placed = backend.batch_defaults("Server", 5_000_000)
        assert alone is not None and placed is not None and alone.batches_in_flight == 2
        assert (placed.max_batch_items, placed.batch_timeout_us) == (alone.max_batch_items, alone.batch_timeout_us)
        assert (placed.workers, placed.batches_in_flight) == (alone.workers * gpus, 2 * gpus)
    finally:
        backend.close()
