"""The ``suite`` command: a thin shell that parses options, builds a frozen config, calls one
function and maps :class:`~suite.errors.SuiteError` to a one-line message and an exit code.

Nothing here imports torch, onnxruntime or mlperf_loadgen at import time, so ``suite --help`` is fast.

Size: this module is over 450 lines because every command's options and help live here, one screen each; the commands' work is in their own modules.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from suite import inputs
from suite.errors import ConfigError, RunInterrupted, SuiteError
from suite.inputs import FloatRange, IntRange

if TYPE_CHECKING:
    from suite.models import WeightsFile


class SuiteGroup(click.Group):
    """A click group whose commands' :class:`SuiteError` become ``Error: <message>`` and its exit code.

    Ctrl-C outside a run (no handler of ``suite.interrupts`` installed) exits 130 as well.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # click's own usage errors (a missing value, an unknown flag) in one line too.
            where = exc.ctx.command_path if exc.ctx is not None and exc.ctx is not ctx else ctx.command_path
            if where == ctx.command_path and ctx.invoked_subcommand:
                where += f" {ctx.invoked_subcommand}"
            click.echo(f"Error: {exc.format_message()} (see '{where} --help')", err=True)
            ctx.exit(exc.exit_code)
        except SuiteError as exc:
            details = getattr(exc, "details", "")
            if details:
                click.echo(details, err=True)
            click.echo(f"Error: {exc}", err=True)
            if isinstance(exc, RunInterrupted):
                # Everything is written and closed. Leave now: with LoadGen left running, its threads
                # still call into Python and the interpreter's shutdown would crash under them; and
                # with torch loaded that shutdown alone took 1.4 s on 2 busy cores.
                sys.stdout.flush()
                sys.stderr.flush()
                logging.shutdown()
                os._exit(exc.exit_code)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Error: interrupted by SIGINT", err=True)
            ctx.exit(130)


@click.group(cls=SuiteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="recsuite")
def cli(verbose: int) -> None:
    """recsuite: MLPerf-style benchmarks for neural recommendation inference.

    \b
    suite run --model dlrm-rmc1 --backend torch-cpu --scenario offline
    suite tune --model dlrm-rmc1 --backend deeprecsched --sla-ms 100
    suite check results/ | suite audit TEST01 --model ... --backend ... --scenario ...
    suite submit --results results/ --org ORG --out sub/ | suite compare results/ other/ sub/
    suite models | suite backends | suite data generate | import | verify | suite summary
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")


def _parse_options(pairs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"'option' must look like KEY=VALUE (got {pair!r})")
        out.append((key, value))
    return tuple(out)


def _target_qps(text: str | None) -> float | str | None:
    """``--target-qps``: None, ``auto`` or a number."""
    from suite.config import AUTO

    if text is None or text == AUTO:
        return text
    try:
        return inputs.parse_float("target-qps", text, 0, inputs.MAX_TARGET_QPS, lo_open=True)
    except ConfigError:
        raise ConfigError(f"'target-qps' must be a finite number in (0, {inputs.MAX_TARGET_QPS:.0f}] or {AUTO!r} (got {text!r})") from None


#: Every option of ``suite run``, declared once by name; ``suite audit`` takes them all and
#: ``suite tune`` the ones it shares (``_shared``), so the help of an option is the same everywhere.
_OPTIONS: dict[str, Any] = {
    "model": click.option("--model", required=True, help="Model name (see `suite models`)."),
    "backend": click.option("--backend", required=True, help="Backend name (see `suite backends`)."),
    "scenario": click.option("--scenario", required=True, help="offline, server, singlestream or multistream."),
    "profile": click.option("--profile", default="short", show_default=True, help="smoke (seconds), short (60 s) or official."),
    "variant": click.option(
        "--variant",
        help="The rule set's named target: 99 | 99.9 (mlperf-v5.1: dlrm-v2-99 / dlrm-v2-99.9), "
        "low | medium | high (deeprecsys SLA) [default: the rule set's].",
    ),
    "target-qps": click.option(
        "--target-qps",
        help="Server target / Offline expected queries per second, or 'auto' (an untimed probe before "
        "LoadGen starts) [default: auto for Offline; for Server the rule table's number for the model, else auto].",
    ),
    "scale": click.option("--scale", default="small", show_default=True, help="tiny, small, full or a row cap per table."),
    "query-size": click.option("--query-size", help="mlperf | lognormal:MU,SIGMA | normal:MEAN,STD | fixed:N | file:PATH."),
    "output": click.option("--output", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
                 help="Results root: runs land in OUTPUT/<system>/<model>/<Scenario>, a tune in OUTPUT/<system>/<model>/tune."),
    "system": click.option("--system", help="System name in the results tree [default: <hostname>-<backend>]."),
    "user-conf": click.option("--user-conf", type=click.Path(path_type=Path), help="LoadGen user.conf overriding the rules."),
    "overwrite": click.option("--overwrite", is_flag=True, help="Replace an existing run (or tune) folder."),
    "dataset": click.option("--dataset", type=click.Path(path_type=Path), help="A dataset folder from `suite data import`."),
    "rows": click.option("--rows", type=IntRange("rows", 1, inputs.MAX_ROWS), help="Items in the generated dataset [default: by scale]."),
    "seed": click.option("--seed", type=IntRange("seed", 0, inputs.MAX_SEED), default=0, show_default=True, help="Seed of the weights and the data."),
    "weights": click.option(
        "--weights",
        type=click.Path(path_type=Path),
        help="Trained weights (safetensors, or a torch.save'd state_dict) loaded over the seeded ones; "
        "every key and shape is checked, the SHA-256 recorded.",
    ),
    "reference-auc": click.option(
        "--reference-auc",
        type=float,
        help="The reference AUC (a fraction, e.g. 0.8031) the accuracy gate is a fraction of, for data "
        "without a teacher (imported Criteo) [default: the dataset's recorded one; none: not gated].",
    ),
    "tasks": click.option("--tasks", type=IntRange("tasks", 1, inputs.MAX_TASKS), help="Tasks of a multi-task model (mtwnd) [default: 3]."),
    "threads": click.option(
        "--threads",
        type=IntRange("threads", 0, inputs.MAX_THREADS),
        default=0,
        show_default=True,
        help="The backend's CPU parallelism (0: its policy): intra-op threads for torch-cpu and onnxruntime (every core Offline, "
        "one per worker otherwise), CPU workers for deeprecsched (one per core).",
    ),
    "precision": click.option("--precision", default="fp32", show_default=True, help="fp32, tf32, bf16, fp16, fp8 (torch-cuda, DLRM models: fp8 matmuls, int8 rows) or int8 (torch-cpu, onnxruntime)."),
    "max-batch-items": click.option("--max-batch-items", type=IntRange("max-batch-items", 1, inputs.MAX_BATCH_ITEMS), help="Largest batch the harness forms, in items."),
    "batch-timeout-us": click.option("--batch-timeout-us", type=IntRange("batch-timeout-us", 0, inputs.MAX_BATCH_TIMEOUT_US), help="How long a batch may wait to fill (0: never)."),
    "workers": click.option(
        "--workers",
        type=IntRange("workers", 1, inputs.MAX_WORKERS),
        help="Harness threads calling the backend [default: the backend's policy; CPU backends: cores / threads].",
    ),
    "option": click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Backend-specific option (see `suite backends`; suite tune keeps them fixed)."),
    "devices": click.option(
        "--devices",
        help="GPU backends: all | N (the first N) | 0,2 (these): one worker process per GPU, LoadGen and the "
        "batcher in this one; in-process: the backend in this process on one GPU [default: all in Offline and "
        "Server, in-process in SingleStream and MultiStream].",
    ),
    "processes": click.option(
        "--processes",
        type=IntRange("processes", 1, inputs.MAX_WORKERS),
        help="A CPU backend in N local worker processes, each on its own share of the cores "
        "[default: threads of this process].",
    ),
    "cluster": click.option(
        "--cluster",
        metavar="ray|ray://HOST:PORT",
        help="Place one worker per GPU (per node, for a CPU backend) of a Ray cluster: ray (RAY_ADDRESS, else the "
        "cluster `ray start` started here) or ray://HOST:PORT; needs pip install 'recsuite[cluster]'.",
    ),
    "cluster-mode": click.option(
        "--cluster-mode",
        default="batched",
        show_default=True,
        help="With --cluster: batched (the driver batches queries for the workers) or network (MLPerf Network "
        "division: every query goes unbatched, with its rows, to a worker through LoadGen's query dispatch library).",
    ),
    "rules": click.option("--rules", help="Rule set [default: the one listing the model]."),
    "data-dir": click.option("--data-dir", type=click.Path(path_type=Path), help="Dataset cache [default: ~/.cache/recsuite/data]."),
    "progress": click.option("--progress/--no-progress", default=True, help="Progress on stderr: a live line (run), one line per LoadGen run (tune)."),
    "power": click.option(
        "--power",
        is_flag=True,
        help="Sample GPU board power (NVML) and CPU package energy (RAPL) over LoadGen's timed window; writes power.json.",
    ),
}
_RUN_OPTIONS = list(_OPTIONS.values())


def _shared(*names: str) -> Callable[[Any], Any]:
    """A decorator adding the named options of :data:`_OPTIONS` (another command's share of them)."""

    def decorate(func: Any) -> Any:
        for n in reversed(names):
            func = _OPTIONS[n](func)
        return func

    return decorate


def _run_options(func: Any) -> Any:
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return func


def _run_config(kw: dict[str, Any], mode: str) -> Any:
    """The frozen RunConfig of ``suite run`` / ``suite audit`` options."""
    from suite.config import Mode, RunConfig, Scenario
    from suite.errors import one_of
    from suite.models import ModelSpec
    from suite.rules import RuleSet

    one_of("mode", mode, [m.value for m in Mode])
    config = RunConfig(
        model=ModelSpec(name=kw["model"], scale=kw["scale"], seed=kw["seed"], tasks=kw["tasks"], weights=_weights(kw["weights"])),
        backend=_known_backend(kw["backend"]),
        scenario=Scenario.parse(kw["scenario"]),
        mode=Mode(mode),
        profile=kw["profile"],
        target_qps=_target_qps(kw["target_qps"]),
        query_size=kw["query_size"],
        rows=kw["rows"],
        dataset=kw["dataset"],
        output=kw["output"],
        system=kw["system"],
        user_conf=kw["user_conf"],
        threads=kw["threads"],
        precision=kw["precision"],
        max_batch_items=kw["max_batch_items"],
        batch_timeout_us=kw["batch_timeout_us"],
        workers=kw["workers"],
        backend_options=_parse_options(kw["options"]),
        rules=kw["rules"],
        variant=kw["variant"],
        data_dir=kw["data_dir"],
        overwrite=kw["overwrite"],
        progress=kw["progress"],
        power=kw["power"],
        reference_auc=kw["reference_auc"],
        devices=kw["devices"],
        processes=kw["processes"],
        cluster=kw["cluster"],
        cluster_mode=kw["cluster_mode"],
    )
    RuleSet.load(config.rule_set).variant(config.variant)  # an unknown variant is a usage error
    return config


@cli.command()
@_run_options
@click.option("--mode", default="performance", show_default=True, help="performance or accuracy.")
@click.option("--tuned", type=click.Path(path_type=Path), help="A tuned.json from `suite tune` (its options and workers).")
def run(**kw: Any) -> None:
    """Run LoadGen against a backend and write a result folder."""
    config = _run_config(kw, kw["mode"])
    tuned = None
    if kw["tuned"] is not None:
        from suite.tune import load_tuned

        tuned = load_tuned(kw["tuned"])
        config = tuned.apply(config)
        warning = tuned.warning(config)
        if warning is not None:
            click.echo(f"warning: {warning}", err=True)
    from suite.runner import run as run_suite

    result = run_suite(config, tuned=tuned)
    click.echo(_one_line(result.data, result.path))


@cli.command()
@click.argument("test", metavar="TEST01|TEST04|TEST05|TEST08")
@_run_options
def audit(test: str, **kw: Any) -> None:
    """Run a compliance audit (MLPerf's TEST01, TEST04, TEST05 or TEST08) and verify it.

    The scenario's performance run (and for TEST01 and TEST08 its accuracy run) must exist: the audit is
    compared with them. Writes <Scenario>/<TEST>/ with verify_accuracy.txt / verify_performance.txt.
    Exit 0 when every verification says TEST PASS, 1 otherwise.
    """
    from suite.audit import run_audit
    from suite.config import AUDITS
    from suite.errors import one_of

    one_of("test", test, AUDITS)
    result = run_audit(test, _run_config(kw, "performance"))
    parts = ", ".join(f"{what} {'TEST PASS' if v.passed else 'TEST FAIL'}" for what, v in result.verdicts.items())
    click.echo(f"{test} {kw['model']} {kw['backend']} {kw['scenario']}: {parts} -> {result.path}")
    if not result.passed:
        click.get_current_context().exit(1)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--rules", help="Judge by this rule set [default: the one each run records].")
@click.option("--profile", help="Judge by this profile [default: the run's; official without a config.json].")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def check(paths: tuple[Path, ...], rules: str | None, profile: str | None, as_json: bool) -> None:
    """Check run folders, results trees or submission trees against the rules.

    Exit 0 when no finding is an error, 1 otherwise, 2 for bad options.
    """
    from suite.check import check as check_paths
    from suite.check import table
    from suite.rules import RuleSet

    for path in paths:
        if not path.exists():
            raise ConfigError(f"'path' {str(path)!r} does not exist")
    if rules is not None:
        rule_set = RuleSet.load(rules)
        if profile is not None:
            rule_set.check_profile(profile)
    elif profile is not None:
        from suite.config import PROFILES
        from suite.errors import one_of

        one_of("profile", profile, PROFILES)
    report = check_paths(paths, rules=rules, profile=profile)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else table(report))
    if not report.passed:
        click.get_current_context().exit(1)


@cli.command()
@click.option("--results", type=click.Path(path_type=Path), required=True, help="A results tree of `suite run`.")
@click.option("--org", required=True, help="Submitter name (closed/<ORG>/...): no spaces or path separators.")
@click.option("--division", type=click.Choice(["closed", "open"]), default="closed", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The submission root to create (must not exist).")
@click.option(
    "--system-json",
    type=click.Path(path_type=Path),
    help="Systems fields the machine cannot tell (status, cooling, networking...): one JSON object, or objects keyed by system.",
)
def submit(results: Path, org: str, division: str, out: Path, system_json: Path | None) -> None:
    """Build an MLPerf inference v5.1 submission tree from a results tree.

    Writes OUT/<division>/<ORG>/{code,documentation,systems,results,measurements,compliance},
    OUT-summary.csv (the checker's summary) and OUT-accuracy-logs/ (the full accuracy logs the tree
    holds truncated). Refuses, writing nothing, when the results or the built tree fail `suite check`.
    """
    from suite.check import table
    from suite.submit import SubmitRequest
    from suite.submit import submit as build

    if system_json is not None and not system_json.is_file():
        raise ConfigError(f"'system-json' file {str(system_json)!r} does not exist")
    done = build(SubmitRequest(results=results, org=org, division=division, out=out, system_json=system_json))
    click.echo(table(done.report))
    note = "" if done.profile == "official" else f" (profile {done.profile}: check it with `suite check --profile {done.profile}`)"
    click.echo(f"submission: {done.rows} result(s) -> {done.path}{note}")
    click.echo(f"summary: {done.summary_csv}")
    click.echo(f"full accuracy logs: {done.backup}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--baseline", help="System the speedups are over [default: the first system].")
@click.option("--out", type=click.Path(path_type=Path), default=Path("comparison"), show_default=True)
def compare(paths: tuple[Path, ...], baseline: str | None, out: Path) -> None:
    """Compare results trees and submission trees: CSV, a Markdown table, an HTML report with plots.

    Every performance run is a row (invalid ones marked, never dropped). Writes OUT/comparison.csv,
    OUT/report.html and its PNGs.
    """
    from suite.compare import compare as build

    done = build(list(paths), baseline=baseline, out=out)
    click.echo(done.markdown)
    click.echo(f"\nbaseline {done.baseline}; wrote {done.csv}, {done.html}, " + ", ".join(p.name for p in done.plots))


@cli.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--rules", default="mlperf-v5.1", show_default=True, help="The rule set whose official profile sets the work.")
@click.option("--variant", help="The rule set's variant [default: its default].")
@click.option(
    "--server-fraction",
    type=FloatRange("server-fraction", 0, 1, lo_open=True),
    default=0.8,
    show_default=True,
    help="Server's target QPS as a fraction of the Offline rate.",
)
def plan(run: Path, rules: str, variant: str | None, server_fraction: float) -> None:
    """How long an official submission takes on this machine, from one measured Offline run.

    RUN is an Offline performance run folder (a short one will do: `suite run --scenario offline
    --profile smoke`). Its items/s is the measured part; the runs, their lengths and sample counts
    come from the rule set's official profile and are computed.
    """
    from suite.plan import render, submission_plan
    from suite.record import read_result
    from suite.rules import RuleSet

    path = run / "result.json" if run.is_dir() else run
    if not path.is_file():
        raise ConfigError(f"'run' {str(run)!r} holds no result.json")
    record = read_result(path)
    items = record.harness.items_per_second if record.harness is not None else None
    if record.config.scenario != "Offline" or record.config.mode != "performance" or not items:
        raise ConfigError(f"'run' {str(run)!r} is not an Offline performance run with a measured items/s")
    done = submission_plan(RuleSet.load(rules), record.config.model.name, items, server_fraction=server_fraction, variant=variant)
    click.echo(render(done, str(path)))


def _weights(path: Path | None) -> WeightsFile | None:
    """``--weights``: the file with its SHA-256 (None without the option)."""
    from suite.models import WeightsFile

    return None if path is None else WeightsFile.of(path)


def _known_backend(name: str) -> str:
    from suite.backends import REGISTRY
    from suite.errors import one_of

    one_of("backend", name, REGISTRY)
    return name


def _one_line(data: dict[str, Any], path: Path) -> str:
    cfg = data["config"]
    head = f"{cfg['model']['name']} {cfg['backend']} {cfg['scenario']} {cfg['mode']}"
    if "accuracy" in data:
        acc = data["accuracy"]
        ref = f" (reference {100 * sum(acc['reference_auc']) / len(acc['reference_auc']):.2f}%)" if acc["reference_auc"] else ""
        shown = f"AUC {100 * acc['auc']:.2f}%" if isinstance(acc["auc"], float) else "AUC undefined"
        body = f"{shown}{ref}, {_gate_words(acc)}"
    else:
        perf = data.get("performance", {})
        metric = perf.get("metric", {})
        items = data.get("harness", {}).get("items_per_second", 0.0)
        value = metric.get("value")
        shown = f"{value:,.1f} {metric.get('units')}" if isinstance(value, (int, float)) else "no metric"
        body = f"{shown} ({items:,.0f} items/s), {perf.get('validity')}{_why_invalid(perf)}"
    if "power" in data:
        body += f"; power: {_power_words(data['power'])}"
    return f"{head}: {body} -> {path}"


def _gate_words(acc: dict[str, Any]) -> str:
    """PASS, FAIL (why) or "not gated (why)", as accuracy.txt's result line says."""
    status = acc["status"]
    if acc.get("problem"):
        return f"{status} (AUC undefined: {acc['problem']})"
    if status == "not gated":
        return "not gated (no reference AUC: give --reference-auc)"
    return str(status)


def _power_words(power: dict[str, Any]) -> str:
    if power.get("average_w") is None:
        return str(power.get("measured"))
    per_j = power.get("samples_per_j")
    tail = f", {per_j:,.2f} samples/J" if isinstance(per_j, (int, float)) else ""
    return f"{power['average_w']:,.1f} W average, {power['energy_j']:,.1f} J ({power['measured']}){tail}"


def _why_invalid(perf: dict[str, Any]) -> str:
    reasons = [
        text
        for key, text in (
            ("perf_constraints_met", "latency constraint not met"),
            ("min_duration_met", "min duration not met"),
            ("min_queries_met", "min queries not met"),
            ("early_stopping_met", "early stopping not met"),
        )
        if perf.get(key) is False
    ]
    return f" ({', '.join(reasons)})" if reasons else ""


class _TuneCommand(click.Command):
    """``suite tune``, whose walk options are the ones the tunable backends declare
    (:class:`~suite.backends.base.Tunable`): added when ``suite tune`` parses or shows its help, so
    the CLI knows no parameter by name and ``suite --help`` imports no backend."""

    #: The walk options, built once per registry (tests register backends of their own).
    _walks: dict[tuple[tuple[str, str], ...], list[click.Parameter]] = {}

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from suite.backends import REGISTRY

        key = tuple(REGISTRY.items())
        if key not in self._walks:
            from suite.tune import tune_flags

            self._walks[key] = [
                click.Option([f"--{flag}", flag.replace("-", "_")], metavar="V1,V2,...", help=" ".join(
                    f"{backend}: {t.help} [default: {','.join(map(str, t.walk))}]" for backend, t in owners))
                for flag, owners in tune_flags().items()
            ]  # fmt: skip
        help_option = self.get_help_option(ctx)
        return [*self.params, *self._walks[key], *([help_option] if help_option is not None else [])]


@cli.command(cls=_TuneCommand)
@_shared("model", "scale", "output", "system", "overwrite", "threads", "option", "query-size", "rows", "seed", "weights", "data-dir", "progress")
@click.option("--backend", default="deeprecsched", show_default=True,
              help="The backend to tune: one that declares tunable parameters (see `suite backends`).")
@click.option("--sla-ms", type=FloatRange("sla-ms", 0, 3_600_000, lo_open=True), help="Tail-latency bound in ms [default: the rule table's Server target].")
@click.option("--percentile", type=click.Choice(["95", "99"]), help="Tail percentile [default: the rule table's].")
@click.option("--profile", default="short", show_default=True,
              help="smoke, short or official: search runs of 1, 4 or 10 s; confirming runs of the profile's length.")
@click.option("--search-seconds", type=FloatRange("search-seconds", 0, inputs.MAX_SECONDS, lo_open=True), help="Length of each search run [default: by profile].")
@click.option("--confirm-seconds", type=FloatRange("confirm-seconds", 0, inputs.MAX_SECONDS, lo_open=True), help="Length of each confirming run [default: the profile's].")
@click.option("--start-qps", type=FloatRange("start-qps", 0, inputs.MAX_TARGET_QPS, lo_open=True), help="First target QPS [default: estimated closed-loop].")
def tune(**kw: Any) -> None:
    """Find a backend's best scheduling setting under a tail-latency SLA with LoadGen Server runs
    (DeepRecSched: its per-request batch size B, then its offload threshold Q)."""
    from suite.models import ModelSpec
    from suite.search import Point
    from suite.tune import TuneConfig, parse_walks, tune_flags
    from suite.tune import tune as run_tune

    given = {flag: kw[flag.replace("-", "_")] for flag in tune_flags() if kw.get(flag.replace("-", "_")) is not None}

    config = TuneConfig(
        model=ModelSpec(name=kw["model"], scale=kw["scale"], seed=kw["seed"], weights=_weights(kw["weights"])),
        backend=kw["backend"],
        sla_ms=kw["sla_ms"],
        percentile=float(kw["percentile"]) if kw["percentile"] else None,
        profile=kw["profile"],
        threads=kw["threads"],
        backend_options=_parse_options(kw["options"]),
        walks=parse_walks(kw["backend"], given),  # by the options the backend declares
        search_ms=None if kw["search_seconds"] is None else round(kw["search_seconds"] * 1000),
        confirm_ms=None if kw["confirm_seconds"] is None else round(kw["confirm_seconds"] * 1000),
        start_qps=kw["start_qps"],
        query_size=kw["query_size"],
        rows=kw["rows"],
        data_dir=kw["data_dir"],
        output=kw["output"],
        system=kw["system"],
        overwrite=kw["overwrite"],
    )

    def report(p: Point) -> None:
        verdict = "ok" if p.passed else "FAIL"
        click.echo(
            f"  run {p.run:3d} {p.phase:<14} {p.label:<13} "
            f"{p.target_qps:10,.1f} qps: p-tail {p.tail_latency_ms:8.2f} ms {verdict}",
            err=True,
        )

    from suite.backends import get_backend
    from suite.interrupts import stop_signals

    get_backend(config.backend).check_options(config.backend_options)
    inputs.check_writable_dir("output", config.output)
    # A signal stops the tune where it is (the backend closed, the trace kept), or through the
    # harness inside a LoadGen run.
    with stop_signals() as stop, stop.raising():
        result = run_tune(config, report=report if kw["progress"] else None)
    d = result.data
    click.echo(f"{kw['model']} {config.backend} p{d['percentile']:g} <= {d['sla_ms']:g} ms {result.summary} -> {result.path}")


@cli.command()
@click.option("--scale", default="small", show_default=True, help="Scale the sizes are shown for.")
def models(scale: str) -> None:
    """List the models with their size and per-item cost at a scale.

    \b
    parameters: embedding rows x dim plus every dense weight and bias, at the scale
    emb KB/item: fp32 embedding rows gathered per item (every lookup), in kB of 1000 bytes
    MFLOP/item:  dense FLOPs per item (2 per multiply-accumulate; MLPs, attention and RNN cells)
    dominated by: the larger of embedding gathers (10 FLOP per byte) and dense FLOPs (MLP, attention)
    """
    from suite.models import MODELS, parse_scale

    row_cap = parse_scale(scale)
    click.echo(
        f"{'model':<10} {'tables':>6} {'dense':>5} {'lookups/item':>12} {'parameters':>15} "
        f"{'emb KB/item':>11} {'MFLOP/item':>10}  dominated by"
    )
    for name, config in MODELS.items():
        schema = config.schema(row_cap)
        size = config.size(row_cap)
        lookups = sum(t.lookups for t in schema.tables)
        click.echo(
            f"{name:<10} {size.tables:>6} {schema.dense:>5} {lookups:>12} {size.parameters:>15,} "
            f"{size.embedding_bytes_per_item / 1000:>11.1f} {size.dense_flops_per_item / 1e6:>10.2f}  {size.dominated_by}"
        )


@cli.command()
def backends() -> None:
    """List the backends, whether each can run here, the --option keys each accepts and the
    suite tune options of those with tunable parameters."""
    from suite.backends import REGISTRY, get_backend

    for name, target in REGISTRY.items():
        options, tunable = {}, {}
        try:
            cls = get_backend(name)
            options, tunable = dict(cls.options), dict(cls.tunable)
            reason = cls.unavailable_reason()
            status = "available" if reason is None else f"unavailable ({reason})"
        except SuiteError as exc:
            status = f"unavailable ({exc})"
        click.echo(f"{name:<14} {target:<45} {status}")
        for key, option in options.items():
            click.echo(f"    --option {key}={option.describe()}")
        for parameter in tunable.values():
            click.echo(f"    suite tune {parameter.describe()}")


@cli.group(cls=SuiteGroup)
def data() -> None:
    """Generate or import Criteo-format data."""


@data.command("generate")
@click.option("--model", required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the TSV and meta.json.")
@click.option("--scale", default="small", show_default=True)
@click.option("--rows", type=IntRange("rows", 1, inputs.MAX_ROWS), help="Items to generate [default: by scale].")
@click.option("--seed", type=IntRange("seed", 0, inputs.MAX_SEED), default=0, show_default=True)
@click.option("--tasks", type=IntRange("tasks", 1, inputs.MAX_TASKS), help="Tasks of a multi-task model (mtwnd) [default: 3].")
def data_generate(model: str, out: Path, scale: str, rows: int | None, seed: int, tasks: int | None) -> None:
    """Write synthetic Criteo TSV (with teacher labels) that a person can inspect."""
    from suite.datasets import criteo, synthetic
    from suite.models import ModelSpec, default_rows
    from suite.results import write_json

    spec = ModelSpec(name=model, scale=scale, seed=seed, tasks=tasks)
    if getattr(spec.config, "QUERY_SIZE", None) is not None:
        raise ConfigError(f"{model} reads requests, not Criteo rows: its data are made by 'suite run' (see docs/dlrm-v3.md)")
    n = rows or default_rows(scale)
    inputs.check_writable_dir("out", out)
    generated = synthetic.generate(spec, n)
    out.mkdir(parents=True, exist_ok=True)
    tsv = out / f"{spec.key()}-n{n}.tsv"
    criteo.write(tsv, [generated.raw])
    write_json(out / f"{spec.key()}-n{n}.meta.json", generated.meta)
    ref = generated.meta["reference_auc"]
    click.echo(f"wrote {n} rows to {tsv} (reference AUC {sum(ref) / len(ref):.4f}, click rate {generated.meta['click_rate'][0]:.3f})")


@data.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--model", required=True)
@click.option("--scale", default="small", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Dataset folder [default: in the data cache].")
@click.option("--limit", type=IntRange("limit", 1), help="Read at most this many lines.")
@click.option("--data-dir", type=click.Path(path_type=Path))
@click.option("--tasks", type=IntRange("tasks", 1, inputs.MAX_TASKS), help="Tasks of a multi-task model (mtwnd) [default: 3].")
def data_import(
    file: Path, model: str, scale: str, out: Path | None, limit: int | None, data_dir: Path | None, tasks: int | None
) -> None:
    """Convert a real Criteo file (plain or .gz) into a dataset `suite run --dataset` reads.

    The columns follow the model's schema; DLRM-v2 reads Criteo's own layout (13 integers, 26 single
    ids) and expands each id to its multi-hot size as MLPerf does.
    """
    from suite.datasets.importer import import_file
    from suite.models import ModelSpec

    spec = ModelSpec(name=model, scale=scale, tasks=tasks)
    path = import_file(file, spec, out=out, limit=limit, data_dir=data_dir, progress=True)
    click.echo(f"imported {file} -> {path} (use: suite run --dataset {path} --model {model} --scale {scale} ...)")


@data.command("verify")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--data-dir", type=click.Path(path_type=Path), help="Dataset cache [default: ~/.cache/recsuite/data].")
def data_verify(paths: tuple[Path, ...], data_dir: Path | None) -> None:
    """Check datasets against the sizes, shapes, dtypes and SHA-256 their meta.json records.

    PATHS are dataset folders [default: every dataset in the cache]. Every run checks sizes,
    shapes and dtypes; this reads every byte. Exit 0 when all match, 1 otherwise.
    """
    from suite.datasets import store

    root = store.data_root(data_dir)
    found = list(paths) or sorted(
        p.parent for p in [*root.glob("*/meta.json"), *root.glob("imported/*/meta.json")] if not p.parent.name.startswith(".")
    )
    if not found:
        raise ConfigError(f"no dataset under {root}")
    failed = 0
    for path in found:
        problem = store.verify(path)
        if problem is None:
            click.echo(f"ok         {path}")
            continue
        failed += 1
        if problem == store.UNCHECKED:
            click.echo(f"UNCHECKED  {path}: {problem}")
        else:
            hint = "; remove it and the next run rebuilds it" if path.parent == root else ""
            click.echo(f"DAMAGED    {path}: {problem}{hint}")
    if failed:
        click.get_current_context().exit(1)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def summary(paths: tuple[Path, ...]) -> None:
    """Print a table of the results under PATHS (default: results/).

    A result.json that cannot be read safely or breaks the record format is a row with status
    ``damaged`` and one warning line on stderr naming the problem (``suite check`` lists them all).
    """
    from suite import record
    from suite.errors import RecordError

    rows = []
    for root in paths or (Path("results"),):
        for path in sorted(root.rglob("result.json")):
            try:
                data = record.read_result(path, root=root)
            except RecordError as exc:
                click.echo(f"warning: {path}: {record.describe(exc, path.name)[0]}", err=True)
                rows.append((str(path.parent), "", "", "-", "-", "damaged"))
                continue
            cfg = data.config
            if data.status == "interrupted":
                signal_name = data.interruption.get("signal", "signal")
                rows.append((cfg.system or "", cfg.model.name, f"{cfg.scenario}/{cfg.mode}", "-", "-", f"interrupted ({signal_name})"))
                continue
            if data.accuracy is not None:
                auc = data.accuracy.auc
                value = f"AUC {100 * auc:.2f}%" if auc is not None else "AUC undefined"
            else:
                metric = data.performance.metric if data.performance is not None else None
                v = metric.value if metric is not None else None
                value = f"{v:,.1f} {metric.units}" if metric is not None and v is not None else "-"
            items = data.harness.items_per_second if data.harness is not None else None
            rows.append((
                cfg.system or "",
                cfg.model.name,
                f"{cfg.scenario}/{cfg.mode}",
                value,
                f"{items:,.0f}" if items else "-",
                data.status or "",
            ))
        # A run folder without result.json: killed (SIGKILL, power loss) or still running.
        for config in sorted(root.rglob("config.json")):
            if (config.parent / "result.json").exists():
                continue
            try:
                raw: dict[str, Any] = json.loads(config.read_text()).get("config", {})
            except (OSError, json.JSONDecodeError, AttributeError):
                raw = {}
            rows.append((raw.get("system", str(config.parent)), raw.get("model", {}).get("name", ""),
                         f"{raw.get('scenario', '')}/{raw.get('mode', '')}", "-", "-", "no result.json (killed or running)"))
    if not rows:
        raise ConfigError(f"no result.json under {', '.join(str(p) for p in paths or (Path('results'),))}")
    header = ("system", "model", "scenario/mode", "metric", "items/s", "status")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="suite")


if __name__ == "__main__":
    main()
