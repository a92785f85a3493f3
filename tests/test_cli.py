"""The CLI as a user meets it: exact exit codes and one-line messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from suite.cli import cli

SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--system", "clitest", "--no-progress"]


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "null", "--scenario", "sevrer"],
         "Error: 'scenario' must be one of ['multistream', 'offline', 'server', 'singlestream'] (got 'sevrer')"),
        (["--backend", "tensorflow", "--scenario", "offline"],
         "Error: 'backend' must be one of ['deeprecsched', 'null', 'onnxruntime', 'torch-cpu', 'torch-cuda'] (got 'tensorflow')"),
        (["--backend", "null", "--scenario", "offline", "--mode", "speed"],
         "Error: 'mode' must be one of ['accuracy', 'performance'] (got 'speed')"),
        (["--backend", "null", "--scenario", "offline", "--profile", "quick"],
         "Error: 'profile' must be one of ['official', 'short', 'smoke'] (got 'quick')"),
        (["--backend", "null", "--scenario", "offline", "--target-qps", "-5"],
         "Error: 'target-qps' must be a finite number in (0, 100000000] or 'auto' (got '-5')"),
        (["--backend", "null", "--scenario", "offline", "--scale", "huge"],
         "Error: 'scale' must be one of ['full', 'small', 'tiny'] or a positive row cap below 2**31 (got 'huge')"),
        (["--backend", "null", "--scenario", "offline", "--query-size", "fixed:2000"],
         "Error: 'query-size' fixed must be an integer in [1, 1024] (got 'fixed:2000')"),
        (["--backend", "null", "--scenario", "offline", "--user-conf", "/nonexistent/user.conf"],
         "Error: 'user-conf' file '/nonexistent/user.conf' does not exist"),
        (["--backend", "null", "--scenario", "offline", "--system", "my system"],
         "Error: 'system' must be letters, digits, '.', '_' or '-' (got 'my system')"),
        (["--backend", "null", "--scenario", "offline", "--option", "novalue"],
         "Error: 'option' must look like KEY=VALUE (got 'novalue')"),
    ],
)
def test_bad_options_exit_2_with_one_line(runner: CliRunner, results: Path, args: list[str], message: str) -> None:
    code, out, err = invoke(runner, "run", *SMOKE, "--output", str(results), *args)
    assert code == 2
    assert err == message + "\n"
    assert not results.exists()


def test_unknown_model(runner: CliRunner, results: Path) -> None:
    code, _, err = invoke(runner, "run", "--model", "gpt", "--backend", "null", "--scenario", "offline")
    assert code == 2
    assert err == ("Error: 'model' must be one of ['dien', 'din', 'dlrm-rmc1', 'dlrm-rmc2', 'dlrm-rmc3', 'dlrm-v2', "
                   "'dlrm-v3', 'mtwnd', 'ncf', 'wnd'] (got 'gpt')\n")


def test_run_then_existing_folder_is_refused(runner: CliRunner, results: Path) -> None:
    args = ["run", *SMOKE, "--backend", "null", "--scenario", "server", "--target-qps", "2000", "--output", str(results)]
    code, out, err = invoke(runner, *args)
    assert code == 0, err
    run_dir = results / "clitest" / "dlrm-rmc1" / "Server" / "performance" / "run_1"
    assert out.startswith("dlrm-rmc1 null Server performance: ")
    assert out.rstrip().endswith(f"VALID -> {run_dir}")
    code, _, err = invoke(runner, *args)
    assert code == 2
    assert err == f"Error: {run_dir} already holds a result (use --overwrite to replace it)\n"
    code, _, err = invoke(runner, *args, "--overwrite")
    assert code == 0, err


def test_summary_lists_runs(runner: CliRunner, results: Path) -> None:
    invoke(runner, "run", *SMOKE, "--backend", "null", "--scenario", "offline", "--target-qps", "2000000", "--output", str(results))
    code, out, _ = invoke(runner, "summary", str(results))
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["system", "model", "scenario/mode", "metric", "items/s", "status"]
    assert row.split()[:3] == ["clitest", "dlrm-rmc1", "Offline/performance"]
    assert row.split()[-1] == "valid"


def test_summary_of_nothing_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    code, _, err = invoke(runner, "summary", str(tmp_path))
    assert code == 2 and err == f"Error: no result.json under {tmp_path}\n"


def test_models_and_backends_list_the_registries(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "models", "--scale", "full")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["model", "tables", "dense", "lookups/item", "parameters", "emb", "KB/item", "MFLOP/item",
                              "dominated", "by"]
    rows = {line.split()[0]: line.split()[1:] for line in lines}
    assert list(rows) == ["dlrm-rmc1", "dlrm-rmc2", "dlrm-rmc3", "ncf", "wnd", "mtwnd", "din", "dien", "dlrm-v2", "dlrm-v3"]
    # deeprecsys.md 1c: RMC1 82 KB and 0.20 MFLOP, RMC2 983 KB and 0.64 MFLOP, RMC3 26 KB and 6.4 MFLOP.
    assert rows["dlrm-rmc1"] == ["8", "128", "640", "1,024,100,833", "81.9", "0.20", "embedding"]
    assert rows["dlrm-rmc2"] == ["32", "256", "3840", "1,024,319,937", "983.0", "0.64", "embedding"]
    assert rows["dlrm-rmc3"] == ["10", "2560", "200", "643,205,409", "25.6", "6.41", "MLP"]
    assert rows["din"][-1] == "attention+embedding" and rows["dien"][-1] == "attention"
    assert rows["dlrm-v2"][:4] == ["26", "13", "214", "26,151,671,809"]
    code, out, _ = invoke(runner, "models", "--scale", "tiny")
    assert next(line for line in out.splitlines() if line.startswith("dlrm-rmc1")).split()[4] == "356,833"
    code, out, _ = invoke(runner, "backends")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert list(lines) == ["null", "torch-cpu", "torch-cuda", "onnxruntime", "deeprecsched"]
    assert lines["torch-cpu"].endswith(" available")
    assert lines["onnxruntime"].endswith(" available")
    import torch

    if not torch.cuda.is_available():
        assert lines["torch-cuda"].endswith(f"unavailable (no CUDA GPU visible to torch {torch.__version__})")
    assert lines["deeprecsched"].endswith(" available")


def test_data_generate_writes_inspectable_tsv(runner: CliRunner, tmp_path: Path) -> None:
    code, out, err = invoke(runner, "data", "generate", "--model", "dlrm-rmc1", "--scale", "tiny", "--rows", "300", "--out", str(tmp_path))
    assert code == 0, err
    tsv = tmp_path / "dlrm-rmc1-tiny-s0-n300.tsv"
    assert out.startswith(f"wrote 300 rows to {tsv} (reference AUC ")
    lines = tsv.read_text().splitlines()
    assert len(lines) == 300 and all(len(line.split("\t")) == 137 for line in lines)
    meta = json.loads((tmp_path / "dlrm-rmc1-tiny-s0-n300.meta.json").read_text())
    assert meta["labels"] == "teacher" and meta["zipf_exponent"] == 1.05


def test_import_real_criteo_then_run_on_it(runner: CliRunner, results: Path, tmp_path: Path, kaggle_sample: Path) -> None:
    # Real Criteo rows fit a 13-dense, 26-table schema; the RMC models have their own, so the
    # importer refuses them with the line and the reason.
    code, _, err = invoke(runner, "data", "import", str(kaggle_sample), "--model", "dlrm-rmc1", "--out", str(tmp_path / "ds"))
    assert code == 2
    assert err == f"Error: {kaggle_sample}:1: expected 137 tab-separated fields, found 40\n"
    # A file in the RMC1 layout imports and runs, with its labels taken from the file.
    invoke(runner, "data", "generate", "--model", "dlrm-rmc1", "--scale", "tiny", "--rows", "2000", "--out", str(tmp_path))
    tsv = tmp_path / "dlrm-rmc1-tiny-s0-n2000.tsv"
    code, out, err = invoke(runner, "data", "import", str(tsv), "--model", "dlrm-rmc1", "--scale", "tiny", "--out", str(tmp_path / "ds"))
    assert code == 0, err
    code, out, err = invoke(runner, "run", *SMOKE, "--backend", "torch-cpu", "--scenario", "offline", "--mode", "accuracy",
                            "--dataset", str(tmp_path / "ds"), "--output", str(results))
    assert code == 0, err
    data = json.loads(next(results.rglob("result.json")).read_text())
    assert data["dataset"]["source"] == "criteo"
    assert data["accuracy"]["reference_auc"] is None
    assert data["accuracy"]["auc"] == pytest.approx(0.80, abs=0.05)


def test_dataset_for_another_model_is_refused(runner: CliRunner, results: Path, tmp_path: Path) -> None:
    invoke(runner, "data", "generate", "--model", "dlrm-rmc1", "--scale", "tiny", "--rows", "500", "--out", str(tmp_path))
    invoke(runner, "data", "import", str(tmp_path / "dlrm-rmc1-tiny-s0-n500.tsv"), "--model", "dlrm-rmc1", "--scale", "tiny",
           "--out", str(tmp_path / "ds"))
    code, _, err = invoke(runner, "run", *SMOKE, "--backend", "null", "--scenario", "offline", "--scale", "small",
                          "--dataset", str(tmp_path / "ds"), "--output", str(results))
    assert code == 2
    assert err == f"Error: {tmp_path / 'ds'} was imported for dlrm-rmc1 at scale tiny, not dlrm-rmc1 at scale small\n"


def test_malformed_import_names_the_line(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t" + "\t".join(["3"] * 13) + "\t" + "\t".join(["0a0b0c0d"] * 26) + "\n" + "oops\n")
    code, _, err = invoke(runner, "data", "import", str(bad), "--model", "dlrm-rmc1", "--out", str(tmp_path / "x"))
    assert code == 2
    assert err == f"Error: {bad}:1: expected 137 tab-separated fields, found 40\n"


def test_dlrm_v2_imports_real_criteo_and_runs_on_it(runner: CliRunner, results: Path, tmp_path: Path, kaggle_sample: Path) -> None:
    # Criteo's own layout (13 integers, 26 single ids) is DLRM-v2's file layout; each id is expanded
    # to its multi-hot size on import, as MLPerf's multi-hot Criteo does.
    code, out, err = invoke(runner, "data", "import", str(kaggle_sample), "--model", "dlrm-v2", "--scale", "tiny",
                            "--out", str(tmp_path / "ds"))
    assert code == 0, err
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["items"] == 100 and meta["file_lookups"] == [1] * 26 and sum(meta["lookups"]) == 214
    code, out, err = invoke(runner, "run", "--model", "dlrm-v2", "--scale", "tiny", "--profile", "smoke", "--system", "clitest",
                            "--no-progress", "--backend", "torch-cpu", "--scenario", "offline", "--mode", "accuracy",
                            "--query-size", "fixed:10", "--dataset", str(tmp_path / "ds"), "--output", str(results))
    assert code == 0, err
    data = json.loads(next(results.rglob("result.json")).read_text())
    assert data["dataset"]["source"] == "criteo" and data["accuracy"]["items"] == 100


def test_tasks_option_reaches_the_result(runner: CliRunner, results: Path) -> None:
    code, _, err = invoke(runner, "run", "--model", "ncf", "--tasks", "2", "--backend", "null", "--scenario", "offline")
    assert code == 2
    assert err == "Error: 'tasks' applies only to the multi-task models ['mtwnd'] (got 2 for 'ncf')\n"
