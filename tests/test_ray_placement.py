"""Ray placement (``--cluster ray``): a local Ray cluster of two simulated nodes, bound to 127.0.0.1
and started once with Ray's own cluster utilities, with real torch-cpu workers behind the real
LoadGen. Skipped where Ray is not installed (``pip install 'recsuite[cluster]'``; ``make test``
installs it)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_placement_scores_like

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from suite.backends import get_backend  # noqa: E402
from suite.backends.base import BackendConfig  # noqa: E402
from suite.cli import cli  # noqa: E402
from suite.datasets import synthetic  # noqa: E402
from suite.datasets.batch import Batch  # noqa: E402
from suite.datasets.store import Dataset  # noqa: E402
from suite.errors import BackendError  # noqa: E402
from suite.models import ModelSpec  # noqa: E402
from suite.placement import LibrarySource, WorkerLost  # noqa: E402
from suite.placement.ray import RayPlacement, cluster_nodes, connect, no_delay, plan  # noqa: E402

TINY = ModelSpec(name="dlrm-rmc1", scale="tiny")
ROWS = 4096
SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--no-progress"]
NODE = {"num_cpus": 1, "object_store_memory": 200 * 1024 * 1024, "node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two Ray nodes of one CPU each on this host, every service on 127.0.0.1, no dashboard."""
    c = Cluster(initialize_head=True, head_node_args={"include_dashboard": False, **NODE})
    try:
        c.add_node(**NODE)
        c.wait_for_nodes(timeout=60)
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


@pytest.fixture
def on_cluster(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """``--cluster ray`` finds the test cluster through RAY_ADDRESS, as it would a real one."""
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    return cluster


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.ensure(TINY, ROWS, tmp_path_factory.mktemp("ray-data"))


def test_workers_one_per_node_give_single_process_scores(on_cluster: Cluster, dataset: Path) -> None:
    items = Dataset.load(dataset).items
    placement, specs = RayPlacement.on_cluster("ray", "torch-cpu", BackendConfig(model=TINY))
    # One worker per node, each with the node's CPU as its thread; worker 1 rebuilds the items on
    # its node from the dataset path instead of taking them from the object store.
    assert [s.name for s in specs] == ["Ray worker 0 (node 0 127.0.0.1, CPU)", "Ray worker 1 (node 1 127.0.0.1, CPU)"]
    assert [s.config.threads for s in specs] == [1, 1]
    specs[1] = dataclasses.replace(specs[1], library=LibrarySource(path=str(dataset), rows=ROWS))
    reference = get_backend("torch-cpu")(BackendConfig(model=TINY, threads=1))
    reference.load()
    try:
        placement.start(specs)
        placement.attach(items)
        assert_placement_scores_like(placement, items, reference, rows_worker=0)
        # Batches travel over each actor's direct channel; many in flight at once each get their
        # own scores, or their own error.
        spans = [[(k * 97, k * 97 + 50 + k)] for k in range(8)]
        bad = Batch(dense=np.zeros((3, 1), np.float32), sparse=tuple(s[:3].copy() for s in items.sparse))
        futures = [placement.submit(0, [r]) for r in (*spans[:5], bad, *spans[5:])]
        with pytest.raises(BackendError, match=r"^request failed in Ray worker 0 .*: RuntimeError"):
            futures[5].result(timeout=60)
        for f, s in zip(futures[:5] + futures[6:], spans, strict=True):
            np.testing.assert_array_equal(f.result(timeout=60), reference.predict(Batch.of_spans(items, s)))
        trip = placement.measure_round_trip(pings=5)
        assert 0 < trip.median_us <= trip.p99_us
        info = placement.info().to_dict()
        assert (info["name"], info["nodes"], info["devices_per_node"], info["lost_workers"]) == ("ray", 2, 1, [])
        assert info["devices"] == ["node0/cpu", "node1/cpu"] and info["cluster"] == on_cluster.address
        assert info["dispatch"] == "direct"

        # A worker whose process is killed fails what it held and every later request, named.
        pid = placement.pids()[0]
        held = [placement.submit(0, [[(0, ROWS)]]) for _ in range(3)]
        os.kill(pid, signal.SIGKILL)
        death = f"Ray worker 0 (node 0 127.0.0.1, CPU) (pid {pid}) died (its process exited unexpectedly) with "
        for f in held:
            try:
                f.result(timeout=60)  # answered before the kill
            except WorkerLost as exc:
                assert str(exc).startswith(death)
        assert len(placement.dead()) == 1 and placement.dead()[0].startswith(death)
        with pytest.raises(WorkerLost, match=r"^Ray worker 0 .* died"):
            placement.submit(1, [[(0, 4)]]).result(timeout=10)
    finally:
        placement.close()
        reference.close()
    assert not ray.is_initialized()  # it connected, so it disconnected


def test_dispatch_by_ray_calls_sends_queued_submits_together_and_fails_them_on_a_death(on_cluster: Cluster) -> None:
    # Ray calls (as through Ray Client): submits that queue behind a worker's two calls in flight
    # go as one call, and each gets its own scores or its own error (spans before any items).
    placement, specs = RayPlacement.on_cluster("ray", "null", BackendConfig(model=TINY, options=(("latency_us", "20000"),)),
                                               dispatch="calls")
    rows = [Batch(dense=np.zeros((k + 1, 13), np.float32), sparse=()) for k in range(6)]
    try:
        placement.start(specs)
        futures = [placement.submit(0, [r]) for r in (*rows[:3], [(0, 4)], *rows[3:])]
        with pytest.raises(BackendError, match=r"^request failed in Ray worker 0 .*: BackendError: a request of spans before"):
            futures[3].result(timeout=60)
        assert [len(f.result(timeout=60)) for f in futures[:3] + futures[4:]] == [1, 2, 3, 4, 5, 6]
        assert placement.calls_per_submit() < 1
        assert placement.info().to_dict()["dispatch"] == "calls"

        # Submits queued behind the calls in flight fail, named, when the actor dies (the two calls
        # in flight may have been answered just before).
        held = [placement.submit(1, [r]) for r in rows]
        placement.kill(1)
        lost = []
        for f in held:
            try:
                f.result(timeout=60)
            except WorkerLost as exc:
                lost.append(str(exc))
        assert len(lost) >= len(rows) - 2
        assert all(re.match(r"Ray worker 1 .* died \(killed by ray.kill\)", text) for text in lost), lost
    finally:
        placement.close()


def test_actors_run_at_the_drivers_priority_on_their_spec_cores_with_channels_that_send_at_once(on_cluster: Cluster) -> None:
    # Nagle's algorithm is off on both ends of every channel: a small reply behind an unacknowledged
    # one would otherwise wait for the driver's delayed ACK (tens of ms at the Server p99). A spec
    # that names cores pins its actor's process to them, as a local worker process is pinned.
    core = sorted(os.sched_getaffinity(0))[-1]
    placement, specs = RayPlacement.on_cluster("ray", "null", BackendConfig(model=TINY))
    specs[0] = dataclasses.replace(specs[0], cores=(core,))
    try:
        placement.start(specs)
        assert len(placement.submit(0, [Batch(dense=np.zeros((3, 13), np.float32), sparse=())]).result(timeout=60)) == 3
        actors = placement._actors
        assert [no_delay(a.conn.fileno(), on=False) for a in actors] == [True, True]
        assert ray.get([a.handle.channel_nodelay.remote() for a in actors], timeout=60) == [True, True]
        pid = placement.pids()[0]
        assert {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir(f"/proc/{pid}/task")} == {frozenset({core})}
        assert placement.worker_info[0]["pinned_cores"] == [core] and "pinned_cores" not in placement.worker_info[1]
        # Ray starts its workers at nice 15; they take the driver's, as local worker processes have it.
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        if os.geteuid() == 0:  # lowering a nice value takes the privilege
            assert [w["nice"] for w in placement.worker_info] == [nice, nice]
            assert {os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir(f"/proc/{placement.pids()[0]}/task")} == {nice}
    finally:
        placement.close()


def _run(runner: CliRunner, tmp_path: Path, scenario: str, *extra: str, backend: str = "torch-cpu") -> tuple[int, str, dict]:
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", backend, "--scenario", scenario, "--cluster", "ray",
                                 "--system", "rayed", "--output", str(tmp_path), *extra])
    run_dir = tmp_path / "rayed" / "dlrm-rmc1" / scenario.capitalize() / "performance" / "run_1"
    assert (run_dir / "result.json").is_file(), result.output
    return result.exit_code, result.stderr, json.loads((run_dir / "result.json").read_text())


@pytest.mark.parametrize(("scenario", "qps"), [("offline", "1000"), ("server", "100")])
def test_ray_workers_complete_every_scenario(on_cluster: Cluster, runner: CliRunner, tmp_path: Path, scenario: str, qps: str) -> None:
    code, err, data = _run(runner, tmp_path, scenario, "--target-qps", qps)
    assert data["errors"] == [] and data["harness"]["backend_errors"] == 0, err
    assert data["status"] in ("valid", "invalid") and code in (0, 1)  # INVALID only if the loaded box is slow
    if scenario == "server":
        assert data["harness"]["completed_queries"] == data["performance"]["query_count"]
    assert data["harness"]["completed_queries"] > 0
    assert data["config"]["cluster"] == "ray"
    p = data["placement"]
    assert (p["name"], p["nodes"], p["devices_per_node"], p["lost_workers"]) == ("ray", 2, 1, [])
    assert p["workers"] == ["Ray worker 0 (node 0 127.0.0.1, CPU)", "Ray worker 1 (node 1 127.0.0.1, CPU)"]
    assert p["round_trip_us"]["median_us"] > 0 and p["cluster"] == on_cluster.address
    assert data["backend"]["name"] == "torch-cpu" and data["backend"]["placed_workers"] == 2
    assert not ray.is_initialized()


def test_network_mode_dispatches_each_query_with_its_rows_to_a_named_network_sut(on_cluster: Cluster, runner: CliRunner,
                                                                                  tmp_path: Path) -> None:
    code, err, data = _run(runner, tmp_path, "server", "--target-qps", "100", "--cluster-mode", "network", backend="null")
    # The workers hold no items: a request of spans would fail there, so every query carried its rows.
    assert data["errors"] == [] and data["harness"]["backend_errors"] == 0, err
    assert code in (0, 1) and data["config"]["cluster_mode"] == "network"
    h = data["harness"]
    assert h["batches"] == h["completed_queries"] == data["performance"]["query_count"]  # one query a request, unbatched
    p = data["placement"]
    assert p["mode"] == "network" and p["dispatch"] == "direct"
    assert p["sut_name"].startswith("Network SUT: recsuite null on 2 node(s) [Ray worker 0 (node 0 127.0.0.1, CPU): null on none at ")
    run_dir = tmp_path / "rayed" / "dlrm-rmc1" / "Server" / "performance" / "run_1"
    assert p["sut_name"] in (run_dir / "mlperf_log_detail.txt").read_text()  # LoadGen asked the QDL for it


def test_a_killed_actor_fails_its_queries_and_the_run_names_it(on_cluster: Cluster, runner: CliRunner, tmp_path: Path) -> None:
    run_dir = tmp_path / "rayed" / "dlrm-rmc1" / "Server" / "performance" / "run_1"
    killed: list[str] = []

    def kill_worker_1_once_loadgen_runs() -> None:
        deadline = time.monotonic() + 120
        while not (run_dir / "mlperf_log_detail.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        name = "recsuite-ray-worker-1-node-1-127-0-0-1-cpu"
        ray.kill(ray.get_actor(name), no_restart=True)  # the run's own connection, in this process
        killed.append(name)

    killer = threading.Thread(target=kill_worker_1_once_loadgen_runs, daemon=True)
    killer.start()
    # The null backend (2 ms a batch) starts in a fraction of torch's time; the failure path is the same.
    code, err, data = _run(runner, tmp_path, "server", "--target-qps", "100", "--option", "latency_us=2000", backend="null")
    killer.join()
    assert killed, "no actor to kill"
    assert code == 1
    death = "Ray worker 1 (node 1 127.0.0.1, CPU) (pid "
    assert err.startswith("Error: run invalid: backend raised ") and f"WorkerLost: {death}" in err
    assert data["status"] == "failed" and data["valid"] is False
    lost = data["placement"]["lost_workers"]
    assert len(lost) == 1 and lost[0].startswith(death) and "died (killed by ray.kill) with " in lost[0]
    # LoadGen got every query back, the ones after the death failed fast; the logs stay.
    assert data["harness"]["completed_queries"] == data["performance"]["query_count"]
    assert 1 <= data["harness"]["backend_errors"] <= data["harness"]["completed_queries"]
    assert not list(run_dir.glob("*.tmp*"))
    assert not ray.is_initialized()


def test_a_cluster_without_a_gpu_has_no_worker_for_torch_cuda(on_cluster: Cluster) -> None:
    r, here, _ = connect("ray")
    try:
        nodes = cluster_nodes(r)
    finally:
        if here:
            r.shutdown()
    assert [(n.ip, n.cpus, n.gpus) for n in nodes] == [("127.0.0.1", 1, 0)] * 2
    with pytest.raises(Exception, match=r"^the Ray cluster has no live node with a GPU for 'torch-cuda' \(2 node\(s\) found\)$"):
        plan("torch-cuda", BackendConfig(model=TINY), nodes)


def test_a_lost_node_fails_the_requests_of_its_worker(on_cluster: Cluster) -> None:
    """A third node joins, gets a worker, and vanishes (its raylet killed) with requests in flight."""
    node = on_cluster.add_node(**NODE)
    placement, specs = RayPlacement.on_cluster("ray", "null", BackendConfig(model=TINY, options=(("latency_us", "200000"),)))
    try:
        placement.start(specs)
        placement.attach(Batch(dense=np.zeros((100, 13), np.float32), sparse=(np.zeros((100, 1), np.int32),)))
        assert placement.nodes() == 3
        worker = next(i for i, s in enumerate(placement.slots or ()) if s.node.node_id == node.node_id)
        held = [placement.submit(worker, [[(0, 10)]]) for _ in range(20)]  # 4 s of work
        on_cluster.remove_node(node, allow_graceful=False)
        name = specs[worker].name
        failed = []
        for f in held:  # the first few may be answered before the node goes
            try:
                f.result(timeout=60)
            except WorkerLost as exc:
                failed.append(str(exc))
        assert failed and len(failed) >= 10
        assert all(re.match(rf"{re.escape(name)} \(pid \d+\) died \(unreachable: its node or its connection was lost\)", e) for e in failed)
        assert [d.split(" (pid")[0] for d in placement.dead()] == [name]
    finally:
        placement.close()
