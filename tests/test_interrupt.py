"""Ctrl-C and SIGTERM: real signals to a real ``suite run`` process while LoadGen runs.

Each run is a smoke-profile run stretched to 30 s by a user.conf, on the null backend with a 2 ms
floor per call (deeprecsched: two torch-cpu worker processes), signalled once LoadGen has issued
its first queries. The run must leave within ``STOP_LIMIT_S`` with 128 + the signal, one line on
stderr, LoadGen's detail log and a result.json that says ``interrupted`` and what completed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import smoke_config

from suite import runner as suite_runner
from suite.cli import cli
from suite.config import Scenario
from suite.results import DETAIL, SUMMARY

#: The issue asks for under 2 s; a loaded 2-core CI machine gets one more (measured: see README).
STOP_LIMIT_S = 3.0
#: Long enough that no scenario ends by itself before the signal; stream queries expected at 2-4 ms,
#: so LoadGen pre-generates thousands of queries, not millions.
USER_CONF = """\
*.*.min_duration = 30000
*.SingleStream.target_latency = 2
*.MultiStream.target_latency = 4
*.Offline.target_qps = 1000
*.Server.target_qps = 200
"""
SCENARIOS = {"offline": "Offline", "server": "Server", "singlestream": "SingleStream", "multistream": "MultiStream"}


@dataclass
class Stopped:
    """A signalled run: its exit, how long it took to leave, what it wrote."""

    returncode: int
    stop_s: float
    stderr: str
    run_dir: Path
    #: The run's own worker processes and /dev/shm segments, seen while it ran.
    children: list[int]
    shm: list[Path]

    @property
    def result(self) -> dict:
        return json.loads((self.run_dir / "result.json").read_text())


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _shm_mapped(pid: int) -> list[Path]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted({Path(line.split(None, 5)[5]) for line in maps.splitlines() if "/dev/shm/" in line})


def run_and_signal(out: Path, scenario: str, signals: tuple[signal.Signals, ...], *extra: str, group: bool = False) -> Stopped:
    """Start ``suite run``, wait (bounded) until LoadGen issues queries, send ``signals``, wait for the exit.

    ``group``: signal the run's whole process group, as a terminal's Ctrl-C or a service manager does.
    """
    conf = out / "user.conf"
    out.mkdir(parents=True, exist_ok=True)
    conf.write_text(USER_CONF)
    system = f"intr-{scenario}"
    cmd = [sys.executable, "-m", "suite.cli", "run", "--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke",
           "--scenario", scenario, "--output", str(out), "--system", system, "--no-progress", "--user-conf", str(conf),
           *(extra or ("--backend", "null", "--option", "latency_us=2000"))]
    run_dir = out / system / "dlrm-rmc1" / SCENARIOS[scenario] / "performance" / "run_1"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=group)
    try:
        detail = run_dir / DETAIL
        deadline = time.monotonic() + 120
        # LoadGen logs the queries it generated just before it issues the first one.
        while not (detail.is_file() and "generated_query_count" in detail.read_text(errors="replace")):
            assert proc.poll() is None, f"the run ended before it was signalled: {proc.communicate()}"
            assert time.monotonic() < deadline, "LoadGen did not start within 120 s"
            time.sleep(0.05)
        time.sleep(0.5)
        children = _children(proc.pid)
        shm = _shm_mapped(proc.pid)
        sent = time.monotonic()
        for i, sig in enumerate(signals):
            if i:
                time.sleep(0.2)
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        stop_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stopped = Stopped(proc.returncode, stop_s, stderr, run_dir, children, shm)
    loadgen = stopped.result.get("interrupted", {}).get("loadgen") if (run_dir / "result.json").is_file() else None
    print(f"{scenario} {' '.join(s.name for s in signals)}{' to the group' if group else ''} {' '.join(extra)}: exit {proc.returncode} "
          f"{stop_s:.2f} s after the signal, LoadGen {loadgen}")
    return stopped


def assert_stopped_cleanly(stopped: Stopped, sig: signal.Signals) -> dict:
    assert stopped.returncode == 128 + sig, stopped.stderr
    assert "Traceback" not in stopped.stderr and "Segmentation" not in stopped.stderr, stopped.stderr
    lines = stopped.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: interrupted by {sig.name} after "), stopped.stderr
    assert lines[0].endswith(f"; result.json marked interrupted in {stopped.run_dir}")
    assert stopped.stop_s < STOP_LIMIT_S, f"left {stopped.stop_s:.2f} s after the signal"
    assert (stopped.run_dir / DETAIL).read_text().startswith(":::MLLOG ")
    result = stopped.result
    assert (result["status"], result["valid"]) == ("interrupted", False)
    info = result["interrupted"]
    assert info["signal"] == sig.name
    assert info["loadgen"] in ("ended", "left running")
    assert info["loadgen_s"] > 0.5
    assert info["completed_queries"] == result["harness"]["completed_queries"] > 0
    assert info["completed_items"] == result["harness"]["completed_items"] >= info["completed_queries"]
    return result


@pytest.fixture(scope="module")
def sigint_runs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Stopped]]:
    """One Ctrl-C'd run per scenario, in one results tree (the readers' tests use it too)."""
    root = tmp_path_factory.mktemp("interrupted")
    return root, {s: run_and_signal(root, s, (signal.SIGINT,)) for s in SCENARIOS}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_sigint_stops_a_run_cleanly(sigint_runs: tuple[Path, dict[str, Stopped]], scenario: str) -> None:
    stopped = sigint_runs[1][scenario]
    result = assert_stopped_cleanly(stopped, signal.SIGINT)
    if scenario == "offline":
        # Offline's one query is answered at once after the signal: LoadGen ends with full logs.
        assert result["interrupted"]["loadgen"] == "ended"
        assert result["interrupted"]["discarded_queries"] > 0
        assert "Result is : INVALID" in (stopped.run_dir / SUMMARY).read_text()
    if scenario == "server":
        # Server's schedule cannot be hurried: LoadGen is left running, and was not torn down.
        assert result["interrupted"]["loadgen"] == "left running"


def test_sigterm_stops_a_run_with_143(data_dir: Path, tmp_path: Path) -> None:
    assert_stopped_cleanly(run_and_signal(tmp_path, "server", (signal.SIGTERM,)), signal.SIGTERM)


def test_a_second_ctrl_c_raises_nothing(data_dir: Path, tmp_path: Path) -> None:
    stopped = run_and_signal(tmp_path, "server", (signal.SIGINT, signal.SIGINT))
    assert_stopped_cleanly(stopped, signal.SIGINT)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_deeprecsched_workers_and_shared_memory_are_released(data_dir: Path, tmp_path: Path, sig: signal.Signals) -> None:
    """The whole process group gets the signal; the workers leave it to the parent, which closes them."""
    stopped = run_and_signal(tmp_path, "server", (sig,), "--backend", "deeprecsched", "--threads", "2", group=True)
    assert_stopped_cleanly(stopped, sig)
    assert len(stopped.children) >= 2 and stopped.shm, "no worker processes or shared memory seen"
    deadline = time.monotonic() + 5
    while any(map(_alive, stopped.children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in stopped.children if _alive(pid)]
    assert not [path for path in stopped.shm if path.exists()]


def test_summary_check_and_compare_show_interrupted_runs(sigint_runs: tuple[Path, dict[str, Stopped]], tmp_path: Path) -> None:
    root, runs = sigint_runs
    runner = CliRunner()
    summary = runner.invoke(cli, ["summary", str(root)])
    assert summary.exit_code == 0, summary.output
    rows = summary.stdout.splitlines()[1:]
    assert len(rows) == 4 and all(row.endswith("interrupted (SIGINT)") for row in rows)

    server = runs["server"].run_dir
    check = runner.invoke(cli, ["check", "--json", str(server)])
    assert check.exit_code == 1
    findings = [f for f in json.loads(check.stdout)["findings"] if f["rule"] == "run.interrupted"]
    assert findings == [{
        "rule": "run.interrupted",
        "severity": "error",
        "message": findings[0]["message"],
        "path": str(server / "result.json"),
    }]
    assert findings[0]["message"].startswith("interrupted by SIGINT after ")
    assert findings[0]["message"].endswith(" s of LoadGen; LoadGen was left running, its logs are cut short")

    compare = runner.invoke(cli, ["compare", str(root), "--out", str(tmp_path / "cmp")])
    assert compare.exit_code == 0, compare.output
    table = [line for line in compare.stdout.splitlines() if line.startswith("| intr-")]
    assert len(table) == 4 and all("| INTERRUPTED (SIGINT) |" in line for line in table)


def test_summary_lists_a_killed_run(sigint_runs: tuple[Path, dict[str, Stopped]], tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the folder has config.json and no result.json, and is still listed."""
    killed = tmp_path / "killed"
    shutil.copytree(sigint_runs[1]["server"].run_dir, killed / "run_1")
    (killed / "run_1" / "result.json").unlink()
    summary = CliRunner().invoke(cli, ["summary", str(killed)])
    assert summary.exit_code == 0, summary.output
    assert summary.stdout.splitlines()[1].split() == [
        "intr-server", "dlrm-rmc1", "Server/performance", "-", "-", "no", "result.json", "(killed", "or", "running)"]


def test_a_run_in_process_restores_the_handlers_and_runs_off_the_main_thread(data_dir: Path, results: Path) -> None:
    """Handlers are the run's only while it runs (tests and scripts run many runs in one process);
    off the main thread, where Python cannot install them, a run still runs."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    config = smoke_config(results, scenario=Scenario.SERVER, target_qps=2000.0)
    assert suite_runner.run(config).data["status"] in ("valid", "invalid")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(suite_runner.run(dataclasses.replace(config, overwrite=True)).data["status"]))
    worker.start()
    worker.join()
    assert done and done[0] in ("valid", "invalid")
