"""``suite compare``: three systems (results trees and a submission tree) -> CSV, Markdown, HTML, PNGs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from suite.cli import cli
from suite.compare import COLUMNS, vendor_of

SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--no-progress", "--backend", "null"]


def set_detail(path: Path, **values: object) -> None:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[len(":::MLLOG "):])
            if entry["key"] in values:
                entry["value"] = values[entry["key"]]
                line = ":::MLLOG " + json.dumps(entry)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def edit_json(path: Path, change: dict[str, object]) -> None:
    data = json.loads(path.read_text())
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """One real Server run (performance and accuracy) of the null backend: the template of every system."""
    out = tmp_path_factory.mktemp("compare") / "results"
    runner = CliRunner()
    for mode in ("performance", "accuracy"):
        result = runner.invoke(cli, ["run", *SMOKE, "--scenario", "server", "--target-qps", "1000", "--system", "tmpl",
                                     "--output", str(out), "--mode", mode])  # fmt: skip
        assert result.exit_code == 0, result.output
    return out / "tmpl/dlrm-rmc1/Server"


def make_system(one_run: Path, root: Path, system: str, *, qps: float, p99_ms: float, device: str, cpu: str,
                valid: bool = True, power_w: float | None = None) -> Path:  # fmt: skip
    scen = Path(shutil.copytree(one_run, root / system / "dlrm-rmc1" / "Server"))
    perf = scen / "performance/run_1"
    set_detail(perf / "mlperf_log_detail.txt", result_completed_samples_per_sec=qps, effective_target_qps=qps,
               **{"result_99.00_percentile_latency_ns": int(p99_ms * 1e6), "result_validity": "VALID" if valid else "INVALID"})  # fmt: skip
    for run in (perf, scen / "accuracy"):
        edit_json(run / "result.json", {"backend.device": device, "environment.cpu": cpu, "config.system": system})
    if power_w is not None:
        (perf / "power.json").write_text(json.dumps({"measured": "GPU board power only", "average_w": power_w, "energy_j": power_w * 10,
                                                     "samples_per_j": qps / power_w}))  # fmt: skip
    return root


def test_compare_three_systems_csv_html_and_plots(one_run: Path, tmp_path: Path) -> None:
    gpu = make_system(one_run, tmp_path / "gpu", "h100-box", qps=40_000.0, p99_ms=8.0, device="NVIDIA H100 80GB HBM3 (80 GiB)",
                      cpu="Intel(R) Xeon(R) Platinum 8480+", power_w=400.0)  # fmt: skip
    # A second load point of the same system: a sweep, drawn as latency against load.
    sweep = make_system(one_run, tmp_path / "gpu-low", "h100-box", qps=20_000.0, p99_ms=3.0, device="NVIDIA H100 80GB HBM3 (80 GiB)",
                        cpu="Intel(R) Xeon(R) Platinum 8480+", power_w=300.0)  # fmt: skip
    cpu = make_system(one_run, tmp_path / "cpu", "xeon-box", qps=2_000.0, p99_ms=40.0, device="cpu", cpu="Intel(R) Xeon(R) Platinum 8480+")
    bad = make_system(one_run, tmp_path / "amd", "epyc-box", qps=1_000.0, p99_ms=90.0, device="cpu", cpu="AMD EPYC 9654", valid=False)
    # The AMD system also as a submission tree: a mix of results and submission trees.
    sub = tmp_path / "sub/closed/Acme"
    shutil.copytree(bad / "epyc-box/dlrm-rmc1/Server", sub / "results/epyc-sub/dlrm-rmc1/Server",
                    ignore=shutil.ignore_patterns("config.json", "result.json", "*trace*"))  # fmt: skip
    (sub / "systems").mkdir()
    (sub / "systems/epyc-sub.json").write_text(json.dumps({"accelerator_model_name": "N/A", "host_processor_model_name": "AMD EPYC 9654",
                                                           "framework": "PyTorch 2.13.0"}))  # fmt: skip
    out = tmp_path / "report"
    args = ["compare", str(cpu), str(gpu), str(sweep), str(bad), str(tmp_path / "sub"), "--baseline", "xeon-box", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "comparison.csv", keep_default_na=False, na_values=[""])
    assert list(frame.columns) == [*COLUMNS, "speedup", "note"]
    assert sorted(frame["system"]) == ["epyc-box", "epyc-sub", "h100-box", "h100-box", "xeon-box"]
    by = {(r.system, r.throughput): r for r in frame.itertuples()}
    h100 = by[("h100-box", 40_000.0)]
    assert (h100.vendor, h100.accelerator, h100.backend) == ("NVIDIA", "NVIDIA H100 80GB HBM3 (80 GiB)", "null")
    assert h100.speedup == pytest.approx(20.0) and h100.samples_per_j == pytest.approx(100.0) and h100.p99_latency_ms == 8.0
    amd = by[("epyc-box", 1_000.0)]
    assert (h100.nodes, h100.accelerators, amd.nodes, amd.accelerators) == (1, 1, 1, 0)  # no placement recorded
    assert (amd.vendor, amd.valid, amd.status) == ("AMD", False, "INVALID")  # shown and marked, not dropped
    assert (by[("epyc-sub", 1_000.0)].vendor, by[("epyc-sub", 1_000.0)].backend) == ("AMD", "PyTorch 2.13.0")
    assert by[("xeon-box", 2_000.0)].vendor == "Intel" and by[("xeon-box", 2_000.0)].power_source == "not measured"
    assert frame["accuracy_auc"].round(3).tolist() == [50.0] * 5
    table = result.stdout.splitlines()
    assert table[0].startswith("| system | vendor | accelerator | nodes | accelerators | backend |") and len([t for t in table if t.startswith("| ")]) == 7
    assert any("| epyc-box | AMD |" in t and t.endswith("| INVALID |  |") for t in table)
    plots = ["throughput.png", "speedup.png", "samples_per_joule.png", "latency_vs_load.png"]
    assert table[-1] == f"baseline xeon-box; wrote {out / 'comparison.csv'}, {out / 'report.html'}, " + ", ".join(plots)
    page = (out / "report.html").read_text()
    for png in plots:
        assert (out / png).stat().st_size > 10_000 and f'<img src="{png}"' in page
    assert page.count('<tr class="invalid">') == 2


def test_compare_refuses_an_unknown_baseline(one_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["compare", str(one_run.parent.parent.parent), "--baseline", "nope", "--out", str(tmp_path)])
    assert (result.exit_code, result.stderr) == (2, "Error: 'baseline' must be one of ['tmpl'] (got 'nope')\n")


@pytest.mark.parametrize(
    ("name", "vendor"),
    [("NVIDIA H100 80GB HBM3", "NVIDIA"), ("AMD EPYC 9654 96-Core Processor", "AMD"), ("Intel(R) Xeon(R) 6980P", "Intel"), ("Mystery", "unknown")],
)
def test_vendor_of(name: str, vendor: str) -> None:
    assert vendor_of(name) == vendor


def test_a_multistream_row_is_the_inverse_of_loadgens_per_query_p99(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["run", *SMOKE, "--scenario", "multistream", "--option", "latency_us=100",
                                 "--system", "ms", "--output", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    perf = tmp_path / "r/ms/dlrm-rmc1/MultiStream/performance/run_1"
    # Distinct per-query and per-sample p99s, so the row shows which one it took.
    set_detail(perf / "mlperf_log_detail.txt", **{"result_99.00_percentile_per_query_latency_ns": 4_000_000,
                                                  "result_99.00_percentile_latency_ns": 2_000_000})  # fmt: skip
    result = runner.invoke(cli, ["compare", str(tmp_path / "r"), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    row = pd.read_csv(tmp_path / "cmp/comparison.csv").iloc[0]
    assert (row["scenario"], row["throughput"], row["units"]) == ("MultiStream", 250.0, "queries/s (1/latency)")


def test_speedups_only_between_like_runs_and_invalid_rows_give_loadgens_reason(one_run: Path, tmp_path: Path) -> None:
    base = make_system(one_run, tmp_path / "a", "box", qps=2_000.0, p99_ms=5.0, device="cpu", cpu="Intel(R) Xeon(R)")
    # The same system at another scale and profile: 7x the baseline's number, but not a speedup.
    small = make_system(one_run, tmp_path / "b", "box-small", qps=14_000.0, p99_ms=5.0, device="cpu", cpu="Intel(R) Xeon(R)")
    perf = small / "box-small/dlrm-rmc1/Server/performance/run_1"
    edit_json(perf / "result.json", {"config.model.scale": "small", "settings.profile": "short"})
    slow = make_system(one_run, tmp_path / "c", "box-slow", qps=1_000.0, p99_ms=500.0, device="cpu", cpu="Intel(R) Xeon(R)",
                       valid=False)  # fmt: skip
    detail = slow / "box-slow/dlrm-rmc1/Server/performance/run_1/mlperf_log_detail.txt"
    set_detail(detail, result_perf_constraints_met=False)
    # LoadGen writes its recommendation only into an INVALID run's log, as this line.
    entry = {"key": "result_invalid_reason", "value": "Reduce target QPS to improve latency. ", "time_ms": 1.0,
             "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": False, "is_warning": False}}
    with detail.open("a") as fh:
        fh.write(":::MLLOG " + json.dumps(entry) + "\n")
    shutil.rmtree(slow / "box-slow/dlrm-rmc1/Server/accuracy")
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["compare", str(base), str(small), str(slow), "--baseline", "box", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "comparison.csv", keep_default_na=False, na_values=[""])
    rows = {r.system: r for r in frame.itertuples()}
    assert (rows["box"].scale, rows["box"].profile, rows["box"].rules, rows["box"].precision) == ("tiny", "smoke", "deeprecsys/medium", "fp32")
    assert rows["box"].speedup == 1.0
    assert (rows["box-small"].scale, rows["box-small"].profile) == ("small", "short")
    assert pd.isna(rows["box-small"].speedup)
    assert rows["box-small"].note == "no speedup: unlike box's run (scale tiny vs small, profile smoke vs short)"
    assert rows["box-slow"].speedup == 0.5  # like the baseline's run: a speedup, however invalid
    assert rows["box-slow"].status == "INVALID: latency constraint not met; LoadGen: Reduce target QPS to improve latency."
    assert rows["box-slow"].note == "no accuracy run"


def test_plots_use_a_log_axis_only_where_values_span_more_than_a_decade() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from suite.compare import _bars, _decades

    assert _decades([1.0, 10.5]) and not _decades([1.0, 10.0]) and not _decades([float("nan"), 3.0, 0.0])
    for values, scale in (([100.0, 900.0], "linear"), ([100.0, 40_000.0], "log")):
        best = pd.DataFrame({"system": ["a", "b"], "model": "m", "scenario": "Server", "scale": "tiny", "profile": "smoke",
                             "precision": "fp32", "rules": "r", "throughput": values, "valid": True})  # fmt: skip
        fig, ax = plt.subplots()
        assert _bars(ax, best, "throughput", ["a", "b"], {"a": "C0", "b": "C1"}) == (scale == "log")
        assert ax.get_yscale() == scale
        plt.close(fig)
