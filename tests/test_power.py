"""``suite run --power``: RAPL wraparound, what the report says it measured, and "not measured"."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from suite import power
from suite.cli import cli


class FakeGpu:
    """A GPU source with a steady board power and no energy counter (integrated from samples)."""

    kind = "gpu"
    name = "fake GPU"

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def energy_j(self) -> None:
        return None

    def power_w(self) -> float:
        return self.watts


def rapl_tree(root: Path, energy_uj: int, max_uj: int = 1_000_000) -> Path:
    zone = root / "intel-rapl:0"
    (root / "intel-rapl:0:0").mkdir(parents=True)  # a subzone: inside its package's figure, not read
    zone.mkdir(exist_ok=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    return zone


def test_rapl_counter_wraparound_is_undone(tmp_path: Path) -> None:
    zone = rapl_tree(tmp_path, 999_000)
    sources = power.rapl_sources(tmp_path)
    assert [s.name for s in sources] == ["RAPL package-0 (intel-rapl:0)"]
    meter = power.PowerMeter(sources)
    meter.on_first_issue()
    time.sleep(0.15)
    (zone / "energy_uj").write_text("500000\n")  # wrapped: +501001 uJ
    time.sleep(0.15)
    (zone / "energy_uj").write_text("600000\n")  # +100000 uJ
    meter.on_end()
    report = meter.report().with_throughput(1000.0)
    assert report.measured == "CPU package only"
    assert report.energy_j == pytest.approx(0.601001)
    assert report.average_w == pytest.approx(0.601001 / report.window_s)
    assert report.samples_per_j == pytest.approx(1000.0 / report.average_w)
    assert report.sources[0].method == "counter"
    assert report.sample_count >= 3  # >= 10 Hz over ~0.3 s, plus the two edges


def test_gpu_and_cpu_together_and_integrated_gpu_power(tmp_path: Path) -> None:
    rapl_tree(tmp_path, 0)
    meter = power.PowerMeter([FakeGpu(300.0), *power.rapl_sources(tmp_path)])
    meter.on_first_issue()
    time.sleep(0.3)
    meter.on_end()
    report = meter.report()
    assert report.measured == "GPU board power + CPU package"
    gpu = next(s for s in report.sources if s.kind == "gpu")
    assert gpu.method == "integrated"
    # Trapezoids of a constant 300 W between the first and last sample: a little under the window.
    assert 0.7 * 300.0 * report.window_s < gpu.energy_j <= 300.0 * report.window_s + 1e-9
    assert power.describe([FakeGpu(1.0)]) == "GPU board power only"
    assert power.describe([]) == "not measured: no readable source"


def test_a_report_of_nothing_carries_no_numbers() -> None:
    with pytest.raises(ValueError, match="cannot carry numbers"):
        power.PowerReport(
            measured=power.NOT_MEASURED, window_s=1.0, energy_j=5.0, average_w=5.0, samples_per_j=None, sample_count=0, sample_hz=20.0
        )
    with pytest.raises(ValueError, match="'sample_hz' must be >= 10"):
        power.PowerMeter([], sample_hz=5)


def test_run_power_without_a_source_says_not_measured(
    runner: CliRunner, results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(power, "POWERCAP_ROOT", tmp_path / "no-powercap")
    monkeypatch.setattr(power, "nvml_sources", lambda: [])
    args = ["run", "--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--backend", "null", "--scenario", "server",
            "--target-qps", "1000", "--system", "testsys", "--output", str(results), "--no-progress", "--power"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    run_dir = results / "testsys/dlrm-rmc1/Server/performance/run_1"
    assert result.stdout.endswith(f"; power: not measured: no readable source -> {run_dir}\n")
    report = json.loads((run_dir / "power.json").read_text())
    assert report["measured"] == report["source"] == "not measured: no readable source"
    assert report["energy_j"] is None and report["average_w"] is None and report["samples_per_j"] is None
    assert report["sources"] == [] and report["window_s"] > 0.9  # the smoke profile's 1 s window
    assert json.loads((run_dir / "result.json").read_text())["power"] == report
