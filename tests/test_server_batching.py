"""Server batching for an accelerator: the declared batcher, one batch formed at a time, and
``--target-qps auto`` probing the Server batch size; on the null backend's device model, through
the real LoadGen."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import run_valid, smoke_config

from suite.backends.base import ACCELERATOR_BUCKETS, BackendConfig, BatchDefaults, accelerator_batching, bucket
from suite.backends.null import NULL_IN_FLIGHT, NullBackend
from suite.config import Scenario
from suite.datasets.batch import Batch
from suite.errors import ConfigError
from suite.models import ModelSpec
from suite.runner import SERVER_BATCHED_PROBE_FACTOR, run

# DLRM-v2 fp8 on an H200: milliseconds of one CUDA graph replay per bucket (merged_h200).
H200_FP8_MS = {16: 0.18, 1024: 0.26, 2048: 0.33, 4096: 0.47, 8192: 0.86, 16384: 1.64}


def test_server_takes_the_largest_bucket_within_an_eighth_of_the_bound_and_waits_one_replay() -> None:
    assert accelerator_batching("Server", 60_000_000, H200_FP8_MS, 4) == BatchDefaults(
        max_batch_items=16384, batch_timeout_us=1640, workers=4)
    # A 5-ms bound (NCF): 0.625 ms a batch at most.
    assert accelerator_batching("Server", 5_000_000, H200_FP8_MS, 2) == BatchDefaults(
        max_batch_items=4096, batch_timeout_us=470, workers=2)
    # Nothing fits: the smallest bucket, waiting no longer than the share of the bound.
    assert accelerator_batching("Server", 1_000_000, H200_FP8_MS, 4) == BatchDefaults(
        max_batch_items=16, batch_timeout_us=125, workers=4)


def test_server_holds_at_most_the_batches_in_flight_asked_for_and_never_more_than_the_workers() -> None:
    assert accelerator_batching("Server", 60_000_000, H200_FP8_MS, 8, in_flight=4).batches_in_flight == 4
    assert accelerator_batching("Server", 60_000_000, H200_FP8_MS, 2, in_flight=4).batches_in_flight == 2
    assert accelerator_batching("Offline", 60_000_000, H200_FP8_MS, 8, in_flight=4).batches_in_flight == 0


class _Counting(NullBackend):
    """The null device model counting the batches inside ``predict`` at once, from the last
    ``attach_items`` on (the harness's, after the warm-up, whose workers all predict at once)."""

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self.inside = self.most = 0
        self._count = threading.Lock()

    def attach_items(self, items: Batch) -> None:
        super().attach_items(items)
        self.most = 0

    def predict(self, batch: Batch) -> np.ndarray:
        with self._count:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            return super().predict(batch)
        finally:
            with self._count:
                self.inside -= 1


def test_a_server_batch_closes_only_when_the_device_side_can_take_it(results: Path, data_dir: Path) -> None:
    """Six lanes and a device model that declares two batches in flight, each batch 3 ms of host
    work (the latency floor) and then 2 ms of the device: batches close about every 2 ms and stay
    in predict 5 ms or more, so six workers would hold three or more at once; never more than two
    are inside predict."""
    options = (("batch_us", "2000"), ("item_ns", "1"), ("lanes", "6"), ("latency_us", "3000"))
    config = smoke_config(results, scenario=Scenario.SERVER, target_qps=400.0, backend_options=options)
    made: list[_Counting] = []

    def counting() -> _Counting:
        made.append(_Counting(BackendConfig(model=config.model, options=options)))
        return made[-1]

    data = run_valid(config, counting).data
    assert data["settings"]["batches_in_flight"] == NULL_IN_FLIGHT == 2 and data["harness"]["workers"] == 6
    assert all(backend.most == 2 for backend in made) and data["harness"]["backend_errors"] == 0
    assert data["performance"]["validity"] == "VALID"


def test_offline_takes_the_largest_bucket_without_a_wait_and_no_times_fall_back() -> None:
    assert accelerator_batching("Offline", 60_000_000, H200_FP8_MS, 4) == BatchDefaults(
        max_batch_items=16384, batch_timeout_us=0, workers=4)
    assert accelerator_batching("Server", 60_000_000, {}, 4) == BatchDefaults(max_batch_items=2048, batch_timeout_us=0, workers=4)
    assert accelerator_batching("Offline", 60_000_000, {}, 4).max_batch_items == ACCELERATOR_BUCKETS[-1]


def test_buckets_step_by_half_where_device_time_grows_with_items() -> None:
    assert [bucket(n) for n in (9000, 12289, 5000, 1100)] == [12288, 16384, 6144, 1536]
    assert max(bucket(n) / n for n in range(1025, 16385)) < 1.5


def test_the_null_device_model_declares_what_torch_cuda_would() -> None:
    spec = ModelSpec(name="dlrm-rmc1", scale="tiny")
    plain = NullBackend(BackendConfig(model=spec))
    plain.load()
    assert plain.batch_defaults("Server", 60_000_000) is None
    device = NullBackend(BackendConfig(model=spec, options=(("batch_us", "180"), ("item_ns", "89"), ("lanes", "3"))))
    device.load()
    assert device.device_s(9000) == pytest.approx(180e-6 + 89e-9 * 12288)
    declared = device.batch_defaults("Server", 60_000_000)
    assert declared == BatchDefaults(max_batch_items=16384, batch_timeout_us=1638, workers=3, batches_in_flight=2)
    assert device.batch_defaults("Offline", 60_000_000) == BatchDefaults(max_batch_items=16384, batch_timeout_us=0, workers=3)
    with pytest.raises(ConfigError, match="'item_ns'"):
        NullBackend.check_options([("item_ns", "-1")])


def test_a_wait_fills_one_batch_instead_of_splitting_arrivals_between_waiting_workers(results: Path, data_dir: Path) -> None:
    """Four workers and a 250-ms wait: one worker forms a batch at a time, so a batch closes about
    every 250 ms. Workers that all waited at once would each close a quarter batch as often."""
    config = smoke_config(results, scenario=Scenario.SERVER, target_qps=300.0, workers=4,
                          max_batch_items=1_000_000, batch_timeout_us=250_000)
    h = run(config).data["harness"]
    assert h["backend_errors"] == 0 and h["workers"] == 4
    assert h["batches"] * 0.25 <= h["duration_s"] + 0.5, h


def test_server_auto_probes_the_declared_batch_size(results: Path, data_dir: Path) -> None:
    """Behind a declared batcher, Server's auto target comes from full batches of the Server size,
    not one query per batch: on a device model where a batch costs 2 ms plus 1 us an item, one
    query per batch would measure a small fraction of the device's rate."""
    options = (("batch_us", "2000"), ("item_ns", "1000"))
    config = smoke_config(results, scenario=Scenario.SERVER, target_qps="auto", backend_options=options)
    data = run(config).data
    cal = data["calibration"]
    assert cal["factor"] == SERVER_BATCHED_PROBE_FACTOR
    assert cal["probe_batches"] == f"full batches of {data['settings']['max_batch_items']} items"
    device_items_per_s = 1 / 1e-6
    assert 0.2 * device_items_per_s < cal["probe_items_per_s"] <= device_items_per_s
    assert data["settings"]["target_qps"] == pytest.approx(
        SERVER_BATCHED_PROBE_FACTOR * cal["probe_items_per_s"] / cal["mean_query_items"], rel=0.01)
