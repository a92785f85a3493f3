"""The real LoadGen, driven in every scenario and mode, and what happens when a backend breaks."""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_valid, smoke_config

from suite import harness
from suite.backends import get_backend
from suite.backends.base import BackendConfig
from suite.backends.null import NullBackend
from suite.config import Mode, Scenario, resolve
from suite.datasets.batch import Batch
from suite.datasets.library import QueryLibrary
from suite.datasets.store import Dataset
from suite.errors import BackendError, ConfigError, ResultExistsError, RunFailedError
from suite.models import ModelSpec
from suite.record import read_result
from suite.results import read_accuracy_log, read_detail
from suite.runner import run

LOADGEN_FILES = {"mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"}
# Targets that keep every smoke run VALID on a 2-core machine.
NULL_QPS = {Scenario.OFFLINE: 2_000_000.0, Scenario.SERVER: 2_000.0}
# SingleStream and MultiStream generate queries for twice the minimum duration at the smoke profile's
# expected latency (10 and 50 us); a null SUT faster than that runs out of queries on a fast machine.
# A 100-us floor keeps every machine slower than the expectation.
NULL_FLOOR = {Scenario.SINGLE_STREAM: (("latency_us", "100"),), Scenario.MULTI_STREAM: (("latency_us", "100"),)}
CPU_QPS = {Scenario.OFFLINE: 3_000.0, Scenario.SERVER: 50.0}
#: Offline's target for a null run whose validity is not the test's subject: some 1,100 samples,
#: answered in a fraction of a second (NULL_QPS's 2 million take 20-30 s of harness work here).
QUICK_OFFLINE_QPS = 1_000.0


def files(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()}


@pytest.mark.parametrize("scenario", list(Scenario))
@pytest.mark.parametrize("mode", list(Mode))
def test_null_backend_every_scenario_and_mode(results: Path, data_dir: Path, scenario: Scenario, mode: Mode) -> None:
    config = smoke_config(results, scenario=scenario, mode=mode, target_qps=NULL_QPS.get(scenario),
                          backend_options=NULL_FLOOR.get(scenario, ()))
    result = run_valid(config)
    assert result.path == results / "testsys" / "dlrm-rmc1" / scenario.value / (
        "performance/run_1" if mode is Mode.PERFORMANCE else "accuracy"
    )
    assert LOADGEN_FILES | {"config.json", "result.json"} <= files(result.path)
    data = json.loads((result.path / "result.json").read_text())
    assert data["errors"] == [] and data["loadgen_errors"] == []
    detail = read_detail(result.path / "mlperf_log_detail.txt")
    assert detail.get("effective_scenario") == scenario.value
    if mode is Mode.PERFORMANCE:
        assert data["performance"]["validity"] == "VALID"
        assert data["valid"] is True
        assert data["performance"]["metric"]["value"] > 0
    else:
        # Zeros for every item: the AUC of a constant is 0.5 and the gate must fail it.
        assert data["accuracy"]["auc"] == pytest.approx(0.5)
        assert data["accuracy"]["queries"] == data["dataset"]["queries"]
        assert data["valid"] is False
        assert (result.path / "accuracy.txt").read_text().splitlines()[-1] == "result=FAIL"


@pytest.mark.parametrize("scenario", [Scenario.OFFLINE, Scenario.SERVER, Scenario.SINGLE_STREAM])
def test_torch_cpu_accuracy_passes_the_gate(results: Path, data_dir: Path, scenario: Scenario) -> None:
    config = smoke_config(results, backend="torch-cpu", scenario=scenario, mode=Mode.ACCURACY, target_qps=CPU_QPS.get(scenario))
    result = run(config)
    acc = result.data["accuracy"]
    assert acc["passed"] and result.valid
    assert acc["auc"] >= 0.99 * acc["reference_auc"][0]
    assert acc["auc"] == pytest.approx(acc["reference_auc"][0], abs=1e-4)
    text = (result.path / "accuracy.txt").read_text()
    assert text.startswith(f"AUC={100 * acc['auc']:.3f}%")
    responses = read_accuracy_log(result.path / "mlperf_log_accuracy.json")
    assert len(responses) == acc["total_queries"]


@pytest.mark.parametrize("scenario", [Scenario.OFFLINE, Scenario.SERVER])
def test_torch_cpu_performance_is_valid(results: Path, data_dir: Path, scenario: Scenario) -> None:
    # One thread: two OpenMP threads on two busy cores spin against each other and miss the SLA.
    result = run_valid(smoke_config(results, backend="torch-cpu", scenario=scenario, target_qps=CPU_QPS[scenario], threads=1))
    assert result.data["performance"]["validity"] == "VALID"
    assert result.data["harness"]["completed_items"] > 0
    assert result.data["backend"]["name"] == "torch-cpu"
    collections = result.data["harness"]["gc"]
    assert len(collections["collections"]) == 3 and len(collections["ms"]) == 3
    recorded = read_result(result.path / "result.json").harness
    assert recorded is not None and recorded.gc is not None and recorded.gc.collected == collections["collected"]


def test_gc_watch_records_the_runs_collections_and_the_long_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the run makes is still collected under the frozen heap, and the watch sees it: cycles
    found, the full collection counted, and (with a threshold of zero) recorded as a pause with its
    generation; the callback goes when the run ends."""
    monkeypatch.setattr(harness, "GC_PAUSE_S", 0.0)
    watch = harness.GcWatch()
    with harness.frozen_heap(watch):
        for _ in range(100):
            cycle: list = []
            cycle.append(cycle)
        del cycle
        gc.collect()
    assert watch not in gc.callbacks
    assert watch.collections[2] >= 1 and watch.collected >= 100
    summary = watch.summary()
    assert summary["collected"] == watch.collected
    assert any(generation == 2 for _, _, generation in summary["pauses"])
    assert all(at >= 0.0 and ms >= 0.0 for at, ms, _ in summary["pauses"])


class FailingBackend(NullBackend):
    """Raises on every ``fail_every``-th batch."""

    def __init__(self, config: BackendConfig, fail_every: int = 3) -> None:
        super().__init__(config)
        self.calls = 0
        self.fail_every = fail_every

    def predict(self, batch: Batch) -> np.ndarray:
        self.calls += 1
        if self.calls % self.fail_every == 0:
            raise RuntimeError("device lost")
        return super().predict(batch)


@pytest.mark.parametrize("scenario", [Scenario.OFFLINE, Scenario.SERVER, Scenario.SINGLE_STREAM])
def test_backend_raising_mid_run_completes_every_sample_and_fails_the_run(
    results: Path, data_dir: Path, scenario: Scenario
) -> None:
    config = smoke_config(results, scenario=scenario, mode=Mode.ACCURACY, target_qps=NULL_QPS.get(scenario),
                          max_batch_items=300)
    backend = FailingBackend(BackendConfig(model=config.model))
    with pytest.raises(RunFailedError) as info:
        run(config, backend=backend)
    run_dir = config.run_dir()
    assert str(info.value).startswith("run invalid: backend raised ")
    assert "RuntimeError: device lost" in str(info.value)
    data = json.loads((run_dir / "result.json").read_text())
    assert data["valid"] is False and data["status"] == "failed"
    assert data["harness"]["backend_errors"] >= 1
    # LoadGen got an answer for every query, so it finished and wrote its logs.
    assert data["harness"]["completed_queries"] == data["dataset"]["queries"]
    assert LOADGEN_FILES <= files(run_dir)
    assert len(json.loads((run_dir / "mlperf_log_accuracy.json").read_text())) == data["dataset"]["queries"]


class SlowReadOutcome(harness.Outcome):
    """An outcome whose query count takes a moment to read, so another worker runs between the read
    and the write of each ``completed_queries += ...``: the thread switch that, unguarded, loses counts."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name == "completed_queries":
            time.sleep(0.0005)
        return value


def test_workers_answering_and_failing_at_once_count_every_query(
    results: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker adds to the outcome's counts; a count lost to a thread switch read as queries
    LoadGen never got back (CI once saw 144 answered of LoadGen's 147 after a worker was killed)."""
    monkeypatch.setattr(harness, "Outcome", SlowReadOutcome)
    config = smoke_config(results, mode=Mode.ACCURACY, max_batch_items=2, workers=4)
    backend = FailingBackend(BackendConfig(model=config.model), fail_every=2)
    with pytest.raises(RunFailedError, match="RuntimeError: device lost"):
        run(config, backend=backend)
    data = json.loads((config.run_dir() / "result.json").read_text())
    h = data["harness"]
    assert h["workers"] == 4 and h["backend_errors"] >= 10
    assert h["completed_queries"] == data["dataset"]["queries"]


def test_server_records_where_latency_accrues_inside_the_sut(results: Path, data_dir: Path) -> None:
    """The harness's issue-to-answer latency holds the backend's time (a 3-ms floor per batch) and
    never exceeds LoadGen's latency, which adds the time before LoadGen's issue call."""
    config = smoke_config(results, scenario=Scenario.SERVER, target_qps=300.0, backend_options=(("latency_us", "3000"),))
    data = run(config).data
    harness, latency = data["harness"], data["performance"]["latency_ns"]
    assert 3.0 <= harness["sut_latency_p50_ms"] <= 1.07 * latency["50.00"] / 1e6 + 0.5
    assert harness["sut_latency_p50_ms"] <= harness["sut_latency_p99_ms"] <= 1.07 * latency["99.00"] / 1e6 + 0.5
    assert harness["issue_gap_max_ms"] > 0


def test_sut_latency_quantiles_are_the_upper_edges_of_their_bins() -> None:
    from suite.harness import SUT_LATENCY_EDGES_S, Outcome

    outcome = Outcome()
    assert outcome.sut_latency_s(0.99) == 0.0
    ms1, ms100 = (int(np.searchsorted(SUT_LATENCY_EDGES_S, t)) for t in (1e-3, 0.1))
    outcome.sut_latency[ms1] += 98
    outcome.sut_latency[ms100] += 2
    assert outcome.sut_latency_s(0.5) == pytest.approx(1e-3, rel=0.07)
    assert outcome.sut_latency_s(0.98) == pytest.approx(1e-3, rel=0.07)
    assert outcome.sut_latency_s(0.99) == pytest.approx(0.1, rel=0.07)


def test_backend_returning_wrong_shape_is_an_error(results: Path, data_dir: Path) -> None:
    class Short(NullBackend):
        def predict(self, batch: Batch) -> np.ndarray:
            return np.zeros(len(batch) - 1, dtype=np.float32)

    config = smoke_config(results, target_qps=QUICK_OFFLINE_QPS)
    with pytest.raises(RunFailedError, match=r"TypeError: backend returned \(\d+,\) float32 for \d+ items"):
        run(config, backend=Short(BackendConfig(model=config.model)))


def test_backend_failing_to_load_is_recorded(results: Path, data_dir: Path) -> None:
    class Broken(NullBackend):
        def load(self) -> None:
            raise MemoryError("no room for the tables")

    config = smoke_config(results)
    with pytest.raises(BackendError, match="backend 'null' failed to load: MemoryError: no room for the tables"):
        run(config, backend=Broken(BackendConfig(model=config.model)))
    data = json.loads((config.run_dir() / "result.json").read_text())
    assert data["status"] == "failed" and "no room for the tables" in data["errors"][0]


def test_existing_run_folder_is_refused_then_overwritten(results: Path, data_dir: Path) -> None:
    config = smoke_config(results, target_qps=QUICK_OFFLINE_QPS)
    first = run(config)
    stale = first.path / "stale.txt"
    stale.write_text("old")
    with pytest.raises(ResultExistsError, match="already holds a result"):
        run(config)
    assert stale.exists()
    from dataclasses import replace

    run(replace(config, overwrite=True))
    assert not stale.exists()


def test_user_conf_overrides_the_rule_table(results: Path, data_dir: Path, tmp_path: Path) -> None:
    user_conf = tmp_path / "user.conf"
    user_conf.write_text("dlrm-rmc1.Server.target_qps = 1234\n*.Server.min_query_count = 150\n")
    result = run(smoke_config(results, scenario=Scenario.SERVER, user_conf=user_conf))
    detail = read_detail(result.path / "mlperf_log_detail.txt")
    assert detail.get("effective_target_qps") == 1234
    assert detail.get("effective_min_query_count") == 150
    assert detail.errors == []


def test_logs_go_to_the_run_folder_and_stray_audit_config_is_ignored(
    results: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "audit.config").write_text("*.*.mode = 2\n*.*.accuracy_log_sampling_target = 10\n")
    monkeypatch.chdir(cwd)
    result = run(smoke_config(results, target_qps=NULL_QPS[Scenario.OFFLINE]))
    assert files(cwd) == {"audit.config"}
    assert result.data["performance"]["validity"] == "VALID"
    assert read_detail(result.path / "mlperf_log_detail.txt").get("effective_test_mode") == "PerformanceOnly"


def test_registry_backends_satisfy_the_contract(data_dir: Path) -> None:
    from suite.backends import REGISTRY
    from suite.datasets import synthetic
    from suite.datasets.store import Dataset

    spec = ModelSpec(name="dlrm-rmc1", scale="tiny")
    data = Dataset.load(synthetic.ensure(spec, 16_384))
    batch = Batch(dense=data.items.dense[:64], sparse=tuple(s[:64] for s in data.items.sparse))
    for name in REGISTRY:
        cls = get_backend(name)
        if cls.unavailable_reason() is not None:
            continue
        with cls(BackendConfig(model=spec, threads=1)) as backend:
            backend.load()
            scores = backend.predict(batch)
            assert scores.dtype == np.float32 and scores.shape == (64,)
            assert np.all((scores >= 0) & (scores <= 1))
            assert np.array_equal(scores, backend.predict(batch))
            assert backend.info().name == name


@pytest.mark.parametrize(("latency_us", "ends_naturally"), [(0, False), (20_000, True)])
def test_a_latency_floor_above_the_expected_latency_keeps_multistream_from_running_out(
    results: Path, data_dir: Path, tmp_path: Path, latency_us: int, ends_naturally: bool
) -> None:
    # LoadGen generates MultiStream queries for twice the minimum duration at the expected latency
    # (here 10 ms: 200 queries for the smoke profile's 1 s). A SUT faster than that issues them all
    # before the second is up and LoadGen ends early; one slower than that never can.
    conf = tmp_path / "user.conf"
    conf.write_text("*.MultiStream.target_latency = 10\n")
    config = smoke_config(results, scenario=Scenario.MULTI_STREAM, user_conf=conf,
                          backend_options=(("latency_us", str(latency_us)),))
    result = run(config)
    errors = " ".join(result.data["loadgen_errors"])
    detail = (result.path / "mlperf_log_detail.txt").read_text()
    if ends_naturally:
        assert errors == "" and "Ending naturally" in detail
    else:
        assert "Ran out of generated queries" in errors and not result.valid


def test_null_backend_refuses_unknown_options_and_bad_floors() -> None:
    model = ModelSpec(name="dlrm-rmc1", scale="tiny")
    for options, message in [
        ((("latncy_us", "5"),), "'option' must be one of ['batch_us', 'item_ns', 'lanes', 'latency_us'] for backend 'null' (got 'latncy_us')"),
        ((("latency_us", "-1"),), "'latency_us' must be an integer in [0, 1000000] (got '-1')"),
        ((("latency_us", "1e3"),), "'latency_us' must be an integer in [0, 1000000] (got '1e3')"),
    ]:
        with pytest.raises(ConfigError) as info:
            NullBackend(BackendConfig(model=model, options=options)).load()
        assert str(info.value) == message


def test_the_heap_made_before_loadgen_starts_is_frozen_during_the_run(results: Path, data_dir: Path) -> None:
    """A full collection in the middle of Server stalls LoadGen's issue thread: what existed before
    the run is frozen out of collections while it runs, and unfrozen after."""
    seen: list[int] = []

    class Watching(NullBackend):
        def predict(self, batch: Batch) -> np.ndarray:
            seen.append(gc.get_freeze_count())
            return super().predict(batch)

    config = smoke_config(results, scenario=Scenario.SERVER, target_qps=NULL_QPS[Scenario.SERVER])
    before = gc.get_freeze_count()
    run(config, backend=Watching(BackendConfig(model=config.model)))
    assert seen and seen[-1] > 1000  # the last batch ran under LoadGen (the first ones warmed up before it)
    assert gc.get_freeze_count() == before


def test_server_coalesces_late_queries_unless_user_conf_turns_it_off(results: Path, data_dir: Path, tmp_path: Path) -> None:
    """With a thread holding the GIL most of the time, LoadGen's issue thread runs late: coalescing
    (the Server default) hands it the queries already due in fewer calls; a user.conf's
    ``coalesce_queries = 0`` brings back one call a query, and LoadGen logs which it was."""
    stop = threading.Event()

    def hold_the_gil() -> None:
        while not stop.is_set():
            sum(range(10_000))

    off_conf = tmp_path / "user.conf"
    off_conf.write_text("*.Server.coalesce_queries = 0\n")
    # First, without the hog: this run also generates the dataset, which the hog would slow 30-fold.
    off = run(smoke_config(results / "off", scenario=Scenario.SERVER, target_qps=20_000.0, user_conf=off_conf))
    hog = threading.Thread(target=hold_the_gil, daemon=True)
    hog.start()
    try:
        on = run(smoke_config(results / "on", scenario=Scenario.SERVER, target_qps=20_000.0))
    finally:
        stop.set()
        hog.join()
    assert read_detail(on.path / "mlperf_log_detail.txt").get("requested_server_coalesce_queries") is True
    assert read_detail(off.path / "mlperf_log_detail.txt").get("requested_server_coalesce_queries") is False
    assert on.data["harness"]["issue_calls"] < 0.9 * on.data["harness"]["completed_queries"]
    assert off.data["harness"]["issue_calls"] == off.data["harness"]["completed_queries"]


def test_only_a_server_gap_far_past_poisson_counts_as_a_stall() -> None:
    """At 60,000 queries/s a 20-ms gap is 1,200 arrivals: a stall; at 200 queries/s it is four,
    which Poisson arrivals leave every few hundred queries, so the bar rises to 20 arrivals (100 ms);
    other scenarios record none."""
    settings = resolve(smoke_config(Path("unused"), scenario=Scenario.SERVER, target_qps=60_000.0))
    assert harness.stall_threshold_s(settings) == harness.STALL_S
    slow = dataclasses.replace(settings, target_qps=200.0)
    assert harness.stall_threshold_s(slow) == pytest.approx(0.1)
    assert harness.stall_threshold_s(dataclasses.replace(settings, scenario=Scenario.OFFLINE)) == math.inf


def test_a_backend_holding_the_gil_shows_as_an_issue_stall(results: Path, data_dir: Path) -> None:
    """A batch that holds the GIL for a long C call (one ``sorted`` of a large list) keeps LoadGen's
    issue callback out: the run records that gap as a stall, when it came and how long it was."""
    shuffled = list(np.random.default_rng(0).permutation(2_000_000).tolist())
    calls = 0

    class Hogging(NullBackend):
        def predict(self, batch: Batch) -> np.ndarray:
            nonlocal calls
            calls += 1
            if calls == 40:
                sorted(shuffled)
            return super().predict(batch)

    config = smoke_config(results, scenario=Scenario.SERVER, target_qps=NULL_QPS[Scenario.SERVER])
    data = run(config, backend=Hogging(BackendConfig(model=config.model))).data
    stalls = data["harness"]["issue_stalls"]
    assert stalls, data["harness"]
    threshold_ms = 1e3 * harness.stall_threshold_s(resolve(config))
    assert all(ms >= threshold_ms and at >= 0 for at, ms in stalls)
    assert max(ms for _, ms in stalls) <= data["harness"]["issue_gap_max_ms"] + 0.01


def _null_batcher(sizes: np.ndarray, max_batch_items: int) -> harness.Batcher:
    """A Batcher on the null backend over a library of queries of ``sizes`` items (zeros, no files)."""
    offsets = np.r_[0, np.cumsum(sizes)]
    n_items = int(offsets[-1])
    items = Batch(np.zeros((n_items, 1), np.float32), (np.zeros((n_items, 1), np.int32),))
    library = QueryLibrary(Dataset(path=Path("/nonexistent"), meta={}, items=items,
                                   labels=np.zeros((n_items, 1), np.int8)), offsets)
    return harness.Batcher(library, NullBackend(BackendConfig(model=ModelSpec(name="dlrm-rmc1", scale="tiny"))),
                           max_batch_items=max_batch_items)


def test_an_offline_query_is_queued_in_growing_blocks_each_in_sweeps() -> None:
    """A many-sample query reaches the workers block by block (the first FIRST_BLOCK samples of
    LoadGen's order, then four times as many, ...), so the device starts before the whole query is
    sorted; within a block the samples come in sweeps over ascending indices, cut into chunks of
    whole queries within the batch size, and every sample is queued exactly once."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 40, 5_000)
    batcher = _null_batcher(sizes, max_batch_items=1_000)
    total = harness.FIRST_BLOCK * 6
    indices = rng.integers(0, len(sizes), total).tolist()
    ids = [10**12 + i for i in range(total)]
    batcher.issue(ids, indices)
    chunks = []
    while not batcher._queue.empty():
        chunks.append(batcher._queue.get_nowait())
    queued = [i for chunk in chunks for i in chunk[0]]
    assert sorted(queued) == ids
    where = {sample_id: k for k, sample_id in enumerate(ids)}
    first_block = [where[i] for i in queued[: harness.FIRST_BLOCK]]
    assert max(first_block) < harness.FIRST_BLOCK  # the first block is LoadGen's first samples
    assert min(where[i] for i in queued[harness.FIRST_BLOCK:]) >= harness.FIRST_BLOCK
    for chunk_ids, chunk_idx, chunk_items, _ in chunks:
        assert chunk_items == sum(int(sizes[i]) for i in chunk_idx) <= 1_000
        assert [indices[where[i]] for i in chunk_ids] == chunk_idx
    first = [i for chunk in chunks for i in chunk[1]][: harness.FIRST_BLOCK]
    drops = sum(b < a for a, b in zip(first, first[1:], strict=False))
    assert drops == max(Counter(indices[: harness.FIRST_BLOCK]).values()) - 1  # one drop a sweep


def test_a_query_of_few_samples_but_more_items_than_a_batch_is_cut_too() -> None:
    """A query of fewer samples than ``max_batch_items`` can still hold more items than a batch (the
    sum is taken only then: a query of more samples than that is cut without one); either way
    every chunk stays within the limit and every sample is queued once."""
    sizes = np.full(400, 30)
    batcher = _null_batcher(sizes, max_batch_items=1_000)
    for n in (40, 33, 1_500):  # 1,200 items in 40 samples; 990 in 33 (one batch); more samples than the limit
        ids = list(range(n))
        batcher.issue(ids, [i % 400 for i in ids])
        chunks = []
        while not batcher._queue.empty():
            chunks.append(batcher._queue.get_nowait())
        assert sorted(i for chunk in chunks for i in chunk[0]) == ids
        assert all(chunk[2] == 30 * len(chunk[1]) <= 1_000 for chunk in chunks)
        assert len(chunks) == -(-n // 33)


def test_a_run_begins_after_its_warm_up(tmp_path: Path) -> None:
    """The harness calls ``begin_run`` once, after the warm-up's batches and before the run's, so a
    backend's per-run figures (torch-cuda's timeline) hold LoadGen's run alone."""
    events: list[str] = []

    class Marking(NullBackend):
        def begin_run(self) -> None:
            events.append("begin")

        def predict(self, batch: Batch) -> np.ndarray:
            events.append("predict")
            return super().predict(batch)

    config = smoke_config(tmp_path)
    run(config, backend=Marking(BackendConfig(model=config.model)))
    assert events.count("begin") == 1
    begun = events.index("begin")
    assert "predict" in events[:begun] and "predict" in events[begun + 1:]


def test_an_offline_feed_reads_loadgens_lists_a_piece_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """``np.fromiter`` holds the GIL for its whole list (about 0.1 s for the 5 M samples of a 60-s
    Offline's last block), and the device's lanes cannot launch meanwhile: the feed reads LoadGen's
    lists at most ARRAY_PIECE samples a call, ids and indices once each, and the arrays equal the
    lists' slices."""
    monkeypatch.setattr(harness, "ARRAY_PIECE", 1_000)
    calls: list[int] = []
    fromiter = np.fromiter

    def counted(values: Any, dtype: Any, count: int = -1) -> np.ndarray:
        calls.append(count)
        return fromiter(values, dtype=dtype, count=count)

    monkeypatch.setattr(np, "fromiter", counted)
    values = list(range(7, 2_510))
    assert harness.as_array(values, 5, 2_503, np.int64).tolist() == values[5:2_503]
    assert calls == [1_000, 1_000, 498]
    calls.clear()
    sizes = np.full(500, 3)
    batcher = _null_batcher(sizes, max_batch_items=300)
    total = harness.FIRST_BLOCK * 6
    batcher.issue(list(range(total)), [i % 500 for i in range(total)])
    assert max(calls) == 1_000 and sum(calls) == 2 * total


def test_an_offline_feed_sets_off_no_collection_and_freezes_its_lists() -> None:
    """During a run (inside ``frozen_heap``) queueing a many-sample query makes hundreds of
    thousands of list slots and thousands of chunks; none of it may set off a garbage collection
    (each walked the young lists: 0.5 s of pauses at the start of an H200 Offline run), and what it
    queued is frozen, so later collections skip it too. Collection is back on afterwards."""
    import gc

    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 40, 5_000)
    batcher = _null_batcher(sizes, max_batch_items=200)
    total = harness.FIRST_BLOCK * 6
    indices = rng.integers(0, len(sizes), total).tolist()
    ids = list(range(total))
    collections: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    with harness.frozen_heap():
        frozen = gc.get_freeze_count()
        gc.callbacks.append(seen)
        try:
            batcher.issue(ids, indices)
        finally:
            gc.callbacks.remove(seen)
        assert gc.isenabled()
        chunks = []
        while not batcher._queue.empty():
            chunks.append(batcher._queue.get_nowait())
        assert collections == []
        assert gc.get_freeze_count() >= frozen + 2 * len(chunks)  # each chunk's two lists at least
    assert sorted(i for chunk in chunks for i in chunk[0]) == ids
    assert gc.get_freeze_count() == 0
