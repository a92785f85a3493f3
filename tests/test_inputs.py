"""Inputs are checked before anything is loaded or written: numbers, user.conf, --output, --option.

Every refusal here is exit 2 with one line on stderr, and leaves neither a results folder nor a
dataset cache behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from suite.cli import cli
from suite.datasets.queries import QuerySizes
from suite.errors import ConfigError
from suite.userconf import parse

SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--system", "inputs", "--no-progress"]


def refuse(runner: CliRunner, tmp_path: Path, args: list[str], message: str, backend: str = "null") -> None:
    """``suite run`` with ``args`` exits 2 with exactly ``message``, having written nothing."""
    data = tmp_path / "data"
    out = tmp_path / "results"
    base = ["run", *SMOKE, "--backend", backend, "--scenario", "offline", "--data-dir", str(data)]
    if "--output" not in args:
        base += ["--output", str(out)]
    result = runner.invoke(cli, [*base, *args])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {message}\n"
    assert not out.exists() and not data.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--query-size", "lognormal:nan,0.2"], "'query-size' lognormal needs finite numbers (got 'lognormal:nan,0.2')"),
        (["--query-size", "lognormal:5.1,inf"], "'query-size' lognormal needs finite numbers (got 'lognormal:5.1,inf')"),
        (["--query-size", "lognormal:5.1,0"],
         "'query-size' lognormal needs SIGMA in (0, 3] (fixed:N for one size) (got 'lognormal:5.1,0')"),
        (["--query-size", "lognormal:5.1,-1"],
         "'query-size' lognormal needs SIGMA in (0, 3] (fixed:N for one size) (got 'lognormal:5.1,-1')"),
        (["--query-size", "lognormal:700,0.2"],
         "'query-size' lognormal needs MU in [0, 6.931] (a median query in [1, 1024] items) (got 'lognormal:700,0.2')"),
        (["--query-size", "normal:1e308,16"],
         "'query-size' normal needs MEAN in [1, 1024] (a median query in [1, 1024] items) (got 'normal:1e308,16')"),
        (["--query-size", "normal:165,0"], "'query-size' normal needs STD in (0, 4096] (fixed:N for one size) (got 'normal:165,0')"),
        (["--query-size", "fixed:١٢"], "'query-size' fixed needs finite numbers (got 'fixed:١٢')"),
        (["--scale", "²"], "'scale' must be one of ['full', 'small', 'tiny'] or a positive row cap below 2**31 (got '²')"),
        (["--scale", "٣"], "'scale' must be one of ['full', 'small', 'tiny'] or a positive row cap below 2**31 (got '٣')"),
        (["--scale", "99999999999"],
         "'scale' must be one of ['full', 'small', 'tiny'] or a positive row cap below 2**31 (got '99999999999')"),
        (["--target-qps", "nan"], "'target-qps' must be a finite number in (0, 100000000] or 'auto' (got 'nan')"),
        (["--target-qps", "inf"], "'target-qps' must be a finite number in (0, 100000000] or 'auto' (got 'inf')"),
        (["--target-qps", "0"], "'target-qps' must be a finite number in (0, 100000000] or 'auto' (got '0')"),
        (["--target-qps", "1e12"], "'target-qps' must be a finite number in (0, 100000000] or 'auto' (got '1e12')"),
        (["--rows", "0"], "'rows' must be an integer in [1, 100000000] (got '0')"),
        (["--rows", "1e3"], "'rows' must be an integer in [1, 100000000] (got '1e3')"),
        (["--rows", "٣"], "'rows' must be an integer in [1, 100000000] (got '٣')"),
        (["--rows", "10000000000"], "'rows' must be an integer in [1, 100000000] (got '10000000000')"),
        (["--seed", "9" * 5000], f"'seed' must be an integer in [0, 4294967295] (got '{'9' * 5000}')"),
        (["--seed", "-1"], "'seed' must be an integer in [0, 4294967295] (got '-1')"),
        (["--seed", "4294967296"], "'seed' must be an integer in [0, 4294967295] (got '4294967296')"),
        (["--threads", "-1"], "'threads' must be an integer in [0, 1024] (got '-1')"),
        (["--threads", "nan"], "'threads' must be an integer in [0, 1024] (got 'nan')"),
        (["--threads", "100000"], "'threads' must be an integer in [0, 1024] (got '100000')"),
        (["--workers", "0"], "'workers' must be an integer in [1, 1024] (got '0')"),
        (["--workers", "inf"], "'workers' must be an integer in [1, 1024] (got 'inf')"),
        (["--max-batch-items", "0"], "'max-batch-items' must be an integer in [1, 1048576] (got '0')"),
        (["--max-batch-items", "1_000"], "'max-batch-items' must be an integer in [1, 1048576] (got '1_000')"),
        (["--batch-timeout-us", "-5"], "'batch-timeout-us' must be an integer in [0, 10000000] (got '-5')"),
        (["--batch-timeout-us", "86400000000"], "'batch-timeout-us' must be an integer in [0, 10000000] (got '86400000000')"),
        (["--tasks", "0"], "'tasks' must be an integer in [1, 64] (got '0')"),
    ],
)
def test_bad_numbers_exit_2_before_anything_loads(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    refuse(runner, tmp_path, args, message)


def test_query_size_parse_refuses_what_grew_without_bound() -> None:
    # lognormal:nan,0.2 drew NaN sizes, cast to -2**63 items, and the query loop grew to 3.9 GB.
    with pytest.raises(ConfigError):
        QuerySizes.parse("lognormal:nan,0.2")
    # The bounds still take DeepRecSys's and MLPerf's specs.
    for spec in ("lognormal:5.1,0.2", "normal:165,16", "fixed:1", "fixed:1024", "mlperf"):
        assert QuerySizes.parse(spec).offsets(10_000, seed=0)[-1] == 10_000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2000\n", "must hold 1 to 100000 sizes in [1, 1024]"),
        ("100,-3\n", "must hold comma-separated integers"),
        ("1" * (1 << 20) + "\n", "is larger than 1048576 bytes"),
    ],
)
def test_query_size_file_is_bounded(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "q.txt"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        QuerySizes.parse(f"file:{path}")
    assert str(info.value) == f"'query-size' file {str(path)!r} {message}"


def test_query_size_file_must_be_a_regular_file(tmp_path: Path) -> None:
    # A blocking open of a FIFO waits for a writer forever; the parser must not.
    fifo = tmp_path / "q.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as info:
        QuerySizes.parse(f"file:{fifo}")
    assert str(info.value) == f"'query-size' file {str(fifo)!r} is not a regular file"
    with pytest.raises(ConfigError) as info:
        parse(fifo)
    assert str(info.value) == f"'user-conf' file {str(fifo)!r} is not a regular file"
    with pytest.raises(ConfigError) as info:
        QuerySizes.parse(f"file:{tmp_path}")
    assert str(info.value) == f"'query-size' file {str(tmp_path)!r} is not a regular file"
    with pytest.raises(ConfigError) as info:
        QuerySizes.parse("file:")
    assert str(info.value) == "'query-size' file needs a path (got 'file:')"


# user.conf: LoadGen's grammar, every line checked, the error naming file:line.


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("*.Offline.target_qps = -5", "'target_qps' must be a finite number in (0, 100000000] (got '-5')"),
        ("*.Server.target_qps = nan", "'target_qps' must be a finite number in (0, 100000000] (got 'nan')"),
        ("*.Server.target_qps = 0", "'target_qps' must be a finite number in (0, 100000000] (got '0')"),
        ("*.*.min_duration = 86400001", "'min_duration' must be an integer in [0, 86400000] (got '86400001')"),
        ("*.*.min_duration = 1e5", "'min_duration' must be an integer in [0, 86400000] (got '1e5')"),
        ("*.*.min_duration = -1", "'min_duration' must be an integer in [0, 86400000] (got '-1')"),
        ("*.*.min_duration = 010", "'min_duration' must be an integer in [0, 86400000] (got '010')"),
        ("*.*.min_duration = " + "9" * 5000, "'min_duration' must be an integer in [0, 86400000] (got '999"),
        ("*.Server.target_latency_percentile = 101", "'target_latency_percentile' must be a finite number in (0, 100] (got '101')"),
        ("*.*.min_query_count = 1000000000000", "'min_query_count' must be an integer in [0, 100000000] (got '1000000000000')"),
        ("*.*.target_qps=5", "expected 'model.Scenario.key = value' with spaces around '=' (got '*.*.target_qps=5')"),
        ("*.*.min_duration 5", "expected 'model.Scenario.key = value' with spaces around '=' (got '*.*.min_duration 5')"),
        ("*.*.min_duration = 5 extra", "expected 'model.Scenario.key = value' with spaces around '=' (got '*.*.min_duration = 5 extra')"),
        ("Server.target_qps = 5", "the key must be 'model.Scenario.key' (got 'Server.target_qps')"),
        ("*.Sever.target_qps = 5",
         "'scenario' must be one of ['*', 'MultiStream', 'Offline', 'Server', 'SingleStream'] (got 'Sever')"),
        ("*.*.min_duraton = 5", "'key' must be one of"),
        ("*.Offline.target_latency = 5",
         "'target_latency' applies only to ['MultiStream', 'Server', 'SingleStream']; LoadGen ignores it for Offline "
         "(got '*.Offline.target_latency')"),
        ("*.*.qsl_rng_seed = 5", "'qsl_rng_seed' is read only from LoadGen's built-in mlperf.conf; LoadGen ignores it in user.conf"),
        ("*.*.mode = 1", "'mode' is set by --mode, not user.conf"),
    ],
)
def test_user_conf_line_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "user.conf"
    path.write_text(f"# my settings\n\n*.Offline.min_duration = 500  # half a second\n{line}\n")
    with pytest.raises(ConfigError) as info:
        parse(path)
    assert str(info.value).startswith(f"{path}:4: {message}")


def test_user_conf_grammar_is_loadgens(tmp_path: Path) -> None:
    path = tmp_path / "user.conf"
    path.write_text("  # indented comment\n#no space comment\ndlrm.Server.target_qps = 1.5e3 # note\n"
                    "*.*.max_query_count = 0x10\n*.MultiStream.samples_per_query = 8\n")
    conf = parse(path)
    assert [(s.line, s.model, s.scenario, s.key, s.value) for s in conf.settings] == [
        (3, "dlrm", "Server", "target_qps", 1500.0),
        (4, "*", "*", "max_query_count", 16),
        (5, "*", "MultiStream", "samples_per_query", 8),
    ]


def test_bad_user_conf_exits_2_and_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("*.Offline.target_qps = 100\n*.Offline.target_qps = -5\n")
    refuse(runner, tmp_path, ["--user-conf", str(conf)], f"{conf}:2: 'target_qps' must be a finite number in (0, 100000000] (got '-5')")
    conf.write_bytes(b"\xff\xfe\n")
    refuse(runner, tmp_path, ["--user-conf", str(conf)], f"'user-conf' file {str(conf)!r} is not UTF-8 text")


def test_good_user_conf_is_still_applied_by_loadgen(runner: CliRunner, tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("# LoadGen reads this file itself after our check\n*.Offline.min_query_count = 777\n")
    out = tmp_path / "results"
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "null", "--scenario", "offline", "--target-qps", "2000",
                                 "--user-conf", str(conf), "--output", str(out)])
    assert result.exit_code == 0, result.output
    detail = (out / "inputs/dlrm-rmc1/Offline/performance/run_1/mlperf_log_detail.txt").read_text()
    assert '"key": "requested_min_query_count", "value": 777' in detail


# --output: writable, checked before the dataset loads.


def test_output_that_cannot_be_a_folder_exits_2_before_loading(runner: CliRunner, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    refuse(runner, tmp_path, ["--output", str(afile / "results")],
           f"'output' folder {str(afile / 'results')!r} cannot be created: {str(afile)!r} is not a folder")
    refuse(runner, tmp_path, ["--output", str(afile)], f"'output' folder {str(afile)!r} cannot be created: {str(afile)!r} is not a folder")


def test_output_or_data_dir_nobody_can_write_exits_2_before_loading(runner: CliRunner, tmp_path: Path) -> None:
    # /proc refuses new files even to root, for whom permission bits say nothing.
    refuse(runner, tmp_path, ["--output", "/proc/recsuite/results"],
           "'output' folder '/proc/recsuite/results' is not writable ('/proc' refuses writes)")
    result = runner.invoke(cli, ["run", *SMOKE, "--backend", "null", "--scenario", "offline",
                                 "--data-dir", "/proc/recsuite", "--output", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert result.stderr == "Error: 'data-dir' folder '/proc/recsuite' is not writable ('/proc' refuses writes)\n"
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_output_exits_2_before_loading(runner: CliRunner, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    refuse(runner, tmp_path, ["--output", str(ro / "results")],
           f"'output' folder {str(ro / 'results')!r} is not writable ({str(ro)!r} refuses writes)")


# --option: a declared capability of every backend, checked before anything loads.


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        ("torch-cpu", ["foo=bar"], "'option' must be one of ['dense', 'rows'] for backend 'torch-cpu' (got 'foo')"),
        ("onnxruntime", ["foo=bar"],
         "'option' must be one of ['allow_spinning', 'inter_op_threads', 'lowering', 'opt_level', 'provider', 'quantization'] for backend 'onnxruntime' (got 'foo')"),
        ("onnxruntime", ["opt_level=max"], "'opt_level' must be one of ['all', 'basic', 'disable', 'extended'] (got 'max')"),
        ("onnxruntime", ["inter_op_threads=0"], "'inter_op_threads' must be an integer in [1, 1024] (got '0')"),
        ("torch-cuda", ["foo=bar"], "'option' must be one of ['attention', 'attention_out', 'compile', 'compute', 'counts', 'cuda_graphs', 'device', 'dma', 'fuse_last', 'fused', 'gemm', 'graph_max', 'in_flight', 'kept_fp32', 'lanes', 'projections', 'residual', 'row_scales', 'rows', 'staging', 'start_from_device', 'sync', 'timeline', 'tune'] for backend 'torch-cuda' (got 'foo')"),
        ("torch-cuda", ["device=cpu"], "'device' must look like cuda:N (got 'cpu')"),
        ("torch-cuda", ["staging=pinned"], "'staging' must be one of ['copy', 'dma', 'mapped'] (got 'pinned')"),
        ("torch-cuda", ["sync=yield"], "'sync' must be one of ['block', 'spin'] (got 'yield')"),
        ("torch-cuda", ["counts=gpu"], "'counts' must be one of ['device', 'host'] (got 'gpu')"),
        ("null", ["latency_us=nan"], "'latency_us' must be an integer in [0, 1000000] (got 'nan')"),
        ("null", ["latency_us=5", "latency_us=6"], "'option' 'latency_us' is given twice for backend 'null'"),
        ("deeprecsched", ["foo=bar"],
         "'option' must be one of ['accelerator', 'batch_items', 'cpu_backend', 'offload_items', 'pin', 'pool'] "
         "for backend 'deeprecsched' or of ['dense', 'rows'] for its cpu_backend 'torch-cpu' (got 'foo')"),
        ("deeprecsched", ["batch_items=2048"], "'batch_items' must be an integer in [0, 1024] (got '2048')"),
    ],
)
def test_unknown_or_bad_options_are_refused_by_every_backend(
    runner: CliRunner, tmp_path: Path, backend: str, options: list[str], message: str
) -> None:
    refuse(runner, tmp_path, [a for o in options for a in ("--option", o)], message, backend=backend)


def test_backends_lists_each_backends_options(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["backends"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    after_null = lines[lines.index(next(x for x in lines if x.startswith("null "))) + 1]
    assert after_null == "    --option latency_us=integer in [0, 1000000]: every predict takes at least this long, in microseconds"
    assert "    --option pool=process|thread: spawned worker processes (shared memory) or threads of this process" in lines
    torch_cpu = lines.index(next(x for x in lines if x.startswith("torch-cpu ")))
    assert lines[torch_cpu + 1] == ("    --option dense=int8|bf16: with --precision int8: dense layers in int8 (99% gate) "
                                    "or bf16 (99.9%); default int8")


def test_onnxruntime_lowering_choices_are_the_exporters() -> None:
    from suite.backends import get_backend
    from suite.models.export import LOWERINGS

    assert get_backend("onnxruntime").options["lowering"].choices == LOWERINGS


def test_click_usage_errors_are_one_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["run", "--model", "dlrm-rmc1", "--rows"], prog_name="suite")
    assert result.exit_code == 2
    assert result.stderr == "Error: Option '--rows' requires an argument. (see 'suite run --help')\n"
    result = runner.invoke(cli, ["data", "generate", "--model", "dlrm-rmc1", "--out", "x", "--zzz"], prog_name="suite")
    assert result.exit_code == 2
    assert result.stderr == "Error: No such option '--zzz'. (see 'suite data generate --help')\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sla-ms", "nan"], "'sla-ms' must be a finite number in (0, 3600000] (got 'nan')"),
        (["--search-seconds", "inf"], "'search-seconds' must be a finite number in (0, 86400] (got 'inf')"),
        (["--start-qps", "-3"], "'start-qps' must be a finite number in (0, 100000000] (got '-3')"),
        (["--batch-sizes", "32,2048"], "'batch-sizes' must be an integer in [0, 1024] (got '2048')"),
        (["--thresholds", "64,٣"], "'thresholds' must be at most 64 comma-separated integers (got '64,٣')"),
        (["--option", "pool=fork"], "'pool' must be one of ['process', 'thread'] (got 'fork')"),
    ],
)
def test_tune_refuses_bad_inputs_before_any_run(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["tune", "--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke",
                                 "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "results"), *args])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message}\n"
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_data_commands_refuse_an_unwritable_out_before_working(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["data", "generate", "--model", "dlrm-rmc1", "--scale", "tiny", "--rows", "10",
                                 "--out", "/proc/recsuite"])
    assert result.exit_code == 2
    assert result.stderr == "Error: 'out' folder '/proc/recsuite' is not writable ('/proc' refuses writes)\n"
    source = tmp_path / "day.tsv"
    source.write_text("")
    result = runner.invoke(cli, ["data", "import", str(source), "--model", "dlrm-rmc1", "--out", "/proc/recsuite/ds"])
    assert result.exit_code == 2
    assert result.stderr == "Error: 'out' folder '/proc/recsuite' is not writable ('/proc' refuses writes)\n"


def test_loadgen_work_is_bounded_by_qps_times_duration(runner: CliRunner, tmp_path: Path) -> None:
    # Each value is in range alone; together they would have LoadGen generate 6.6e8 queries up
    # front (about 200 bytes each: a null Offline run of 11M queries took 2.7 GB).
    refuse(runner, tmp_path, ["--target-qps", "1000000", "--profile", "official"],
           "'target-qps' 1e+06 over a minimum duration of 600 s asks LoadGen for 6.6e+08 queries "
           "(at most 5e+07, about 200 bytes each)")
    conf = tmp_path / "user.conf"
    conf.write_text("*.Offline.min_duration = 80000000\nother-model.*.target_qps = 5\n")  # another model: not applied
    refuse(runner, tmp_path, ["--user-conf", str(conf)],
           "'target-qps' 2000 over a minimum duration of 80000 s asks LoadGen for 1.76e+08 queries "
           "(at most 5e+07, about 200 bytes each)")


def test_user_conf_value_follows_loadgens_lookup_order(tmp_path: Path) -> None:
    path = tmp_path / "user.conf"
    path.write_text("*.*.min_duration = 1\ndlrm.*.min_duration = 2\n*.Server.min_duration = 3\n"
                    "dlrm.Server.min_duration = 4\ndlrm.Server.min_duration = 5\n")
    conf = parse(path)
    assert conf.value("dlrm", "Server", "min_duration") == 5  # exact, the last line of it
    assert conf.value("other", "Server", "min_duration") == 3  # *.Server before other.*
    assert conf.value("dlrm", "Offline", "min_duration") == 2
    assert conf.value("other", "Offline", "min_duration") == 1
    assert conf.value("dlrm", "Server", "target_qps") is None
