"""Thread, wait and worker policies of the CPU backends, side by side, quiet and beside a busy core.

Each row is one real ``suite run`` (LoadGen, the whole harness) in a fresh subprocess, because
OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads libgomp. The policies run in an order that
alternates within every round, and every round runs each policy once quiet and once beside a
competing process that spins one core (a bounded busy loop started before the run and stopped
after it), so noise from the rest of the machine lands on all of them alike.

Server rows give LoadGen's p95/p99 at a fixed load and its verdict; Offline rows give items/s. CPU
is the child's user+system time over its wall time (100% = one core).

``--precisions fp32,int8`` runs every policy at each precision, alternating within the round, so the
policy is measured at the precision it is the default for; ``--processes`` adds one worker process
per core (``suite run --processes N``, each process one thread) beside the threads of one process;
``--busy no`` leaves out the competing process (on a box other jobs already load).

    .venv/bin/python benchmarks/threads_policy.py [--seconds 12] [--qps 60] [--offline-qps auto]
        [--rounds torch-cpu=2,onnxruntime=1] [--backends torch-cpu,onnxruntime] [--model dlrm-rmc1] [--scale small]
        [--precisions fp32] [--processes] [--busy both|no]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Policy:
    """One way to run a CPU backend: intra-op threads, harness workers, how idle threads wait."""

    name: str
    threads: int
    workers: int
    #: torch-cpu: OMP_WAIT_POLICY ('': libgomp's default, spin 300,000 times then sleep);
    #: onnxruntime: PASSIVE sets ``allow_spinning=0``.
    wait: str = ""
    #: worker processes (``suite run --processes``), each with ``threads`` threads; 0: threads of one process.
    processes: int = 0


def policies(cores: int, processes: bool = False) -> list[Policy]:
    """The candidates; ``cores - 1`` equals 1 on a 2-core machine and is then left out."""
    out = [
        Policy(f"threads={cores} workers=1 (old default)", cores, 1),
        Policy(f"threads={cores} workers=1 passive", cores, 1, "PASSIVE"),
        Policy("threads=1 workers=1", 1, 1),
        Policy(f"threads=1 workers={cores}", 1, cores),
        Policy(f"threads=1 workers={cores} passive", 1, cores, "PASSIVE"),
    ]
    if cores > 2:
        out.insert(2, Policy(f"threads={cores - 1} workers=1", cores - 1, 1))
    if processes:
        out.append(Policy(f"processes={cores} threads=1 passive", 1, 1, "PASSIVE", processes=cores))
    return out


def child(spec: dict[str, object]) -> None:
    """Run one ``suite run`` as ``spec`` says and print its numbers as one JSON line."""
    from suite.config import Mode, RunConfig, Scenario
    from suite.models import ModelSpec
    from suite.runner import run

    out = Path(str(spec["out"]))
    conf = out / "user.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(f"*.*.min_duration = {int(float(str(spec['seconds'])) * 1000)}\n")
    options: tuple[tuple[str, str], ...] = ()
    if spec["backend"] == "onnxruntime":
        options = (("allow_spinning", "0" if spec["wait"] == "PASSIVE" else "1"),)
    config = RunConfig(
        model=ModelSpec(name=str(spec["model"]), scale=str(spec["scale"])),
        backend=str(spec["backend"]),
        scenario=Scenario(str(spec["scenario"])),
        mode=Mode.PERFORMANCE,
        profile="smoke",
        target_qps=spec["qps"] if spec["qps"] == "auto" else float(str(spec["qps"])),
        output=out / "results",
        system="bench",
        user_conf=conf,
        threads=int(str(spec["threads"])),
        workers=None if spec["processes"] else int(str(spec["workers"])),
        processes=int(str(spec["processes"])) or None,
        precision=str(spec.get("precision", "fp32")),
        backend_options=options,
        overwrite=True,
        progress=False,
    )
    t0 = time.perf_counter()
    result = run(config).data
    perf = result["performance"]
    lat = perf["latency_ns"]
    print(json.dumps({
        "valid": result["valid"],
        "p95_ms": lat["95.00"] / 1e6,
        "p99_ms": lat["99.00"] / 1e6,
        "items_per_s": result["harness"]["items_per_second"],
        "queries_per_s": perf["metric"]["value"],
        "run_s": time.perf_counter() - t0,
    }))


def busy_loop(seconds: float) -> subprocess.Popen[bytes]:
    """A process that spins one core for at most ``seconds``."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def one(spec: dict[str, object], busy: bool, limit_s: float) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if spec["wait"]:
        env["OMP_WAIT_POLICY"] = str(spec["wait"])
        env.pop("GOMP_SPINCOUNT", None)
    else:
        # libgomp's documented default when OMP_WAIT_POLICY is unset; set explicitly so the
        # suite's own default (applied only when neither variable is set) does not decide the row.
        env["GOMP_SPINCOUNT"] = "300000"
    spinner = busy_loop(limit_s) if busy else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True,
                              text=True, timeout=limit_s)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # before the spinner is reaped
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {limit_s:.0f} s"}
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    row: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    row["cpu_pct"] = 100.0 * cpu / wall
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=12.0, help="LoadGen min duration of each run")
    parser.add_argument("--qps", type=float, default=60.0, help="Server target QPS")
    parser.add_argument("--offline-qps", default="auto",
                        help="Offline expected QPS ('auto': the suite's probe sizes each run to about --seconds)")
    parser.add_argument("--rounds", default="torch-cpu=2,onnxruntime=1", help="rounds per backend")
    parser.add_argument("--backends", default="torch-cpu,onnxruntime")
    parser.add_argument("--scenarios", default="Server,Offline")
    parser.add_argument("--model", default="dlrm-rmc1")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--precisions", default="fp32", help="precisions, alternating within each round")
    parser.add_argument("--processes", action="store_true", help="also one worker process per core")
    parser.add_argument("--busy", default="both", choices=("both", "no"), help="also beside a process spinning one core")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    cores = len(os.sched_getaffinity(0))
    out = Path(tempfile.mkdtemp(prefix="recsuite-threads-"))
    print(f"# {cores} cores, load average {os.getloadavg()}, {args.model} {args.scale}, {args.seconds:g}-s runs, "
          f"Server at {args.qps:g} QPS, rounds {args.rounds}, precisions {args.precisions}, scratch {out}", flush=True)
    rounds = {k: int(v) for k, _, v in (p.partition("=") for p in args.rounds.split(","))}
    rows: list[dict[str, object]] = []
    for backend in args.backends.split(","):
        cands = policies(cores, args.processes)
        if backend == "onnxruntime":  # its intra-op pool: spinning or not, and one thread per worker
            cands = [p for p in cands if p.threads == cores or (p.workers == cores and not p.wait)]
        loads = (False, True) if args.busy == "both" else (False,)
        for r in range(rounds.get(backend, 1)):
            for scenario in args.scenarios.split(","):
                order = [(pol, prec) for pol in cands for prec in args.precisions.split(",")]
                order = order if r % 2 == 0 else list(reversed(order))
                for busy in loads if r % 2 == 0 else loads[::-1]:
                    for pol, prec in order:
                        spec = {"backend": backend, "scenario": scenario, "model": args.model, "scale": args.scale,
                                "qps": args.qps if scenario == "Server" else args.offline_qps, "precision": prec,
                                "seconds": args.seconds, "out": str(out), **asdict(pol)}
                        row = one(spec, busy, limit_s=args.seconds * 6 + 120)
                        row.update(backend=backend, scenario=scenario, policy=pol.name, precision=prec, busy=busy, round=r,
                                   load=os.getloadavg()[0])
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    print(f"# load average at the end {os.getloadavg()}")
    table(rows)


def table(rows: list[dict[str, object]]) -> None:
    """One Markdown row per (backend, scenario, policy, load): every round's numbers side by side."""
    keys: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for row in rows:
        keys.setdefault((row["backend"], row["scenario"], row.get("precision", "fp32"), row["policy"], row["busy"]), []).append(row)
    print("\n| backend | scenario | precision | policy | load | p95 ms | p99 ms | verdict | items/s | CPU % | load avg |")
    print("| --- | --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for (backend, scenario, precision, policy, busy), group in keys.items():
        def cell(key: str, fmt: str) -> str:
            return " / ".join("err" if "error" in g else format(float(str(g[key])), fmt) for g in group)
        verdict = " / ".join("err" if "error" in g else ("VALID" if g["valid"] else "INVALID") for g in group)
        load = "1 core busy" if busy else "quiet"
        avg = " / ".join(format(float(str(g.get("load", "nan"))), ".1f") for g in group)
        if scenario == "Server":
            print(f"| {backend} | Server | {precision} | {policy} | {load} | {cell('p95_ms', '.1f')} | {cell('p99_ms', '.1f')} | "
                  f"{verdict} | | {cell('cpu_pct', '.0f')} | {avg} |")
        else:
            print(f"| {backend} | Offline | {precision} | {policy} | {load} | | | {verdict} | {cell('items_per_s', ',.0f')} | "
                  f"{cell('cpu_pct', '.0f')} | {avg} |")


if __name__ == "__main__":
    main()
