"""A seeded fuzz of ``suite run``'s options: hundreds of mutated argument lists through the real CLI.

Each case is a valid command with one to three mutations: a number replaced by a hostile string
(nan, inf, unicode digits, 10^40, empty), a hostile ``--query-size``, an unknown or malformed
``--option``, a hostile user.conf line, a hostile name, a dropped value or an unknown flag. Every
case ends with an ``--output`` that cannot be created, so even a case that passes every check stops
before anything is loaded: each stays trivially cheap, and reaching the dataset would show as a
data folder that must never appear.

Asserted for every case: exit 0, 1 or 2; no traceback; for exit 2, one line on stderr. For all of
them together: a few seconds and a bounded growth of the peak memory.
"""

from __future__ import annotations

import random
import resource
import time
from pathlib import Path

from click.testing import CliRunner

from suite.backends import REGISTRY, get_backend
from suite.cli import cli

SEED = 20261130
CASES = 300

NUMBERS = {
    "--target-qps": "100",
    "--rows": "1000",
    "--seed": "0",
    "--threads": "1",
    "--workers": "1",
    "--max-batch-items": "64",
    "--batch-timeout-us": "0",
}
HOSTILE = [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1", "0", "-0", "1e309", "1e-309", "²", "٣", "１２", "1_000",
    "", " ", "0x10", "1e3", "9" * 40, "9" * 5000, "+5", "1.5", "\x00", "--", "ℵ", "٣.٥", "5 ", "1,2", "0b1", "1e", ".", "-",
    "18446744073709551617", "4294967296", "2147483648", "१२३",
]  # fmt: skip
NAMES = {"--scenario": "offline", "--profile": "smoke", "--precision": "fp32", "--mode": "performance",
         "--system": "fuzz", "--rules": "deeprecsys", "--variant": "medium", "--scale": "tiny"}
HOSTILE_NAMES = ["", " ", "../../etc/passwd", "Offline", "\x00", "ø", "a" * 300, "*", "sevrer", "full", "99", "²"]
QUERY_SIZES = ["lognormal:{},{}", "normal:{},{}", "fixed:{}", "mlperf:{}", "file:{}", "poisson:{}", "{}", "lognormal:{}"]
USER_CONF_KEYS = ["target_qps", "min_duration", "min_query_count", "target_latency", "target_latency_percentile",
                  "samples_per_query", "mode", "qsl_rng_seed", "bogus_key"]
SCENARIO_PARTS = ["*", "Offline", "Server", "SingleStream", "MultiStream", "Sever", ""]


def _mutate(rng: random.Random, args: dict[str, str], extra: list[str], conf_dir: Path, case: int) -> None:
    kind = rng.randrange(8)
    if kind == 0:
        args[rng.choice(list(NUMBERS))] = rng.choice(HOSTILE + [str(rng.randint(-(10**12), 10**12))])
    elif kind == 1:
        spec = rng.choice(QUERY_SIZES)
        args["--query-size"] = spec.format(*(rng.choice(HOSTILE + ["5.1", "0.2", "165", "/dev/zero"]) for _ in range(2)))
    elif kind == 2:
        backend = args["--backend"]
        declared = list(get_backend(backend).options) if backend in REGISTRY else []
        keys = [*declared, "foo", "", "latency_us", "batch_items"]
        key = rng.choice(keys)
        value = rng.choice(HOSTILE + ["1", "thread", "cuda", "none"])
        extra += ["--option", rng.choice([f"{key}={value}", key, f"={value}", f"{key}=={value}"])]
    elif kind == 3:
        path = conf_dir / f"user-{case}.conf"
        model = rng.choice(["*", "dlrm-rmc1", ""])
        line = f"{model}.{rng.choice(SCENARIO_PARTS)}.{rng.choice(USER_CONF_KEYS)} = {rng.choice(HOSTILE + ['100', '0x10'])}"
        line = rng.choice([line, line.replace(" = ", "="), line + " trailing", "# " + line, "=" + line])
        path.write_text(f"# fuzz\n*.Offline.min_duration = 500\n{line}\n", encoding="utf-8", errors="surrogateescape")
        args["--user-conf"] = str(path)
    elif kind == 4:
        args[rng.choice(list(NAMES))] = rng.choice(HOSTILE_NAMES + HOSTILE)
    elif kind == 5:
        args["--backend"] = rng.choice([*REGISTRY, "tensorflow", "", "null "])
    elif kind == 6:
        extra.append(rng.choice(["--bogus", "-x", "--rows", "--option", "--", "extra-argument"]))
    else:
        args["--scale"] = rng.choice(HOSTILE + ["tiny", "0", "2147483648", "1"])


def test_mutated_run_options_exit_cleanly_in_one_line(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    runner = CliRunner()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data = tmp_path / "data"
    for name in REGISTRY:  # import every backend once, so the memory bound below measures the cases
        get_backend(name)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    codes: dict[int, int] = {}
    for case in range(CASES):
        args = {"--model": "dlrm-rmc1", "--backend": rng.choice(["null", "torch-cpu", "onnxruntime", "deeprecsched"]),
                **NAMES, **NUMBERS}
        extra: list[str] = []
        for _ in range(rng.randint(1, 3)):
            _mutate(rng, args, extra, tmp_path, case)
        argv = ["run", *(x for kv in args.items() for x in kv), "--no-progress", "--data-dir", str(data), *extra,
                "--output", str(blocker / "out")]
        t0 = time.perf_counter()
        result = runner.invoke(cli, argv, prog_name="suite")
        took = time.perf_counter() - t0
        shown = f"case {case}: {argv!r} -> {result.exit_code}\n{result.output}"
        assert result.exit_code in (0, 1, 2), shown
        assert result.exception is None or isinstance(result.exception, SystemExit), shown
        assert "Traceback" not in result.output, shown
        if result.exit_code == 2:
            assert len(result.stderr.splitlines()) <= 1, shown
            assert result.stderr.startswith("Error: "), shown
        assert took < 10, shown
        assert not data.exists(), shown  # nothing was loaded or generated
        codes[result.exit_code] = codes.get(result.exit_code, 0) + 1
    assert codes == {2: CASES}  # every case is refused: the mutations and the output both see to it
    assert time.perf_counter() - started < 60
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 256
