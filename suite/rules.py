"""Rule tables as data: ``rules/<name>.toml`` read with the standard library.

The repository's ``rules/`` folder installs as the package ``suite.rule_tables`` (setup.cfg's
``package_dir``, like ``backends/`` and ``datasets/``), so a wheel or ``pip install .`` ships the
tables and :func:`rules_dir` finds them with :mod:`importlib.resources` wherever the suite is installed.

A rule set maps ``model.Scenario.key`` to a value, like LoadGen's ``mlperf.conf``, and looks keys
up in LoadGen's order: ``model.Scenario``, ``*.Scenario``, ``model.*``, ``*.*``. Two kinds of
overlay tables of the same form sit on top of the base settings:

* variants: the benchmark's named targets, e.g. MLPerf's ``99`` / ``99.9`` accuracy (benchmarks
  ``dlrm-v2-99`` / ``dlrm-v2-99.9``) or DeepRecSys's ``low`` / ``medium`` / ``high`` SLA;
* profiles (``smoke``, ``short``, ``official``): durations and counts.

A profile's entries win over the variant's, which win over the base settings. The harness builds
LoadGen's TestSettings from these tables and ``suite check`` judges results by them, so what is
run and what is checked come from one place.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from suite.errors import ConfigError, UnknownNameError

_MISSING = object()


def rules_dir() -> Traversable:
    """The folder of rule tables: ``$RECSUITE_RULES_DIR`` or the installed package ``suite.rule_tables``."""
    env = os.environ.get("RECSUITE_RULES_DIR")
    return Path(env) if env else files("suite.rule_tables")


def available() -> list[str]:
    """Names of the rule sets on disk."""
    folder = rules_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml") and p.is_file())


@dataclass(frozen=True)
class RuleSet:
    """One rule table: its ``meta``, base ``settings``, named ``profiles`` and ``variant_tables``."""

    name: str
    meta: Mapping[str, Any]
    settings: Mapping[str, Any]
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variant_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str) -> RuleSet:
        if name not in available():  # a name, never a path ('../x' would read any .toml)
            raise UnknownNameError("rules", name, available())
        path = rules_dir() / f"{name}.toml"
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"rule table {path} is unreadable: {exc}") from None
        return cls(
            name=name,
            meta=data.get("meta", {}),
            settings=data.get("settings", {}),
            profiles=data.get("profiles", {}),
            variant_tables=data.get("variants", {}),
        )

    def variant_table(self, variant: str) -> Mapping[str, Any]:
        return self.variant_tables.get(variant, {})

    @property
    def models(self) -> list[str]:
        return list(self.meta.get("models", []))

    def loadgen_model(self, model: str) -> str:
        """The model key LoadGen's config lookup should use for ``model``."""
        return str(self.meta.get("loadgen_model", {}).get(model, model))

    @property
    def variants(self) -> list[str]:
        """The named targets of this rule set (MLPerf's ``99``/``99.9``, DeepRecSys's SLA levels)."""
        return [str(v) for v in self.meta.get("variants", [])]

    @property
    def default_variant(self) -> str | None:
        value = self.meta.get("default_variant")
        return None if value is None else str(value)

    @property
    def required_scenarios(self) -> list[str]:
        """Scenarios every (system, benchmark) must have, each with a performance and an accuracy run."""
        return [str(s) for s in self.meta.get("required_scenarios", [])]

    @property
    def compliance(self) -> list[str]:
        """Compliance audits (``TEST01``...) every scenario of a result needs."""
        return [str(t) for t in self.meta.get("compliance", [])]

    @property
    def early_stopping(self) -> list[str]:
        """Scenarios judged by LoadGen's early stopping instead of a minimum query count."""
        return [str(s) for s in self.meta.get("early_stopping", [])]

    @property
    def accuracy_metrics(self) -> list[str]:
        """The metrics an accuracy run is gated by when not the AUC alone (mlperf-v6.0: ne, accuracy, gauc)."""
        return [str(m) for m in self.meta.get("accuracy_metrics", [])]

    @property
    def closed_query_size(self) -> str | None:
        """The ``--query-size`` a closed-division result must use (None: the rule set names none)."""
        value = self.meta.get("closed_query_size")
        return None if value is None else str(value)

    def variant(self, variant: str | None) -> str | None:
        """``variant`` checked against the rule set's, or its default when None."""
        if variant is None:
            return self.default_variant
        if variant not in self.variants:
            raise UnknownNameError("variant", variant, self.variants)
        return variant

    def benchmark(self, model: str, variant: str | None) -> str:
        """The benchmark name of a result: ``dlrm-v2-99.9`` under mlperf-v5.1, the model otherwise."""
        template = str(self.meta.get("benchmark", "{model}"))
        return template.format(model=model, variant=self.variant(variant) or "")

    def parse_benchmark(self, benchmark: str) -> tuple[str, str | None]:
        """(model, variant) of a benchmark name such as ``dlrm-v2-99.9``.

        Raises:
            UnknownNameError: no model and variant of this rule set spell ``benchmark``.
        """
        # The default first: a template without {variant} names every variant the same.
        variants: list[str | None] = [*sorted(self.variants, key=lambda v: v != self.default_variant)] or [None]
        for model in self.models:
            for variant in variants:
                if self.benchmark(model, variant) == benchmark:
                    return model, variant
        if str(self.meta.get("benchmark", "{model}")) == "{model}":
            return benchmark, self.default_variant
        declared: list[str | None] = [*self.variants] or [None]
        choices = [self.benchmark(m, v) for m in self.models for v in declared]
        raise UnknownNameError("benchmark", benchmark, choices)

    def check_profile(self, profile: str) -> None:
        if profile not in self.profiles:
            raise UnknownNameError("profile", profile, self.profiles)

    def get(
        self,
        model: str,
        scenario: str,
        key: str,
        profile: str | None = None,
        default: Any = _MISSING,
        *,
        variant: str | None = None,
    ) -> Any:
        """The value of ``key`` for (model, scenario): the profile's entries, the variant's, the base's."""
        variant = self.variant(variant)
        tables = ([self.profiles[profile]] if profile else []) + (
            [self.variant_table(variant)] if variant is not None else []
        ) + [self.settings]
        for table in tables:
            for pattern in (f"{model}.{scenario}", f"*.{scenario}", f"{model}.*", "*.*"):
                value = table.get(f"{pattern}.{key}", _MISSING)
                if value is not _MISSING:
                    return value
        if default is _MISSING:
            raise ConfigError(f"rule set {self.name!r} has no {key!r} for {model} {scenario}")
        return default


    def get_for_model(
        self, model: str, scenario: str, key: str, profile: str | None = None, *, variant: str | None = None
    ) -> Any:
        """The value of ``key`` set for ``model`` itself (``model.Scenario`` or ``model.*``), or None
        when only wildcard entries (``*.Scenario``, ``*.*``) give one."""
        variant = self.variant(variant)
        tables = ([self.profiles[profile]] if profile else []) + (
            [self.variant_table(variant)] if variant is not None else []
        ) + [self.settings]
        for table in tables:
            for pattern in (f"{model}.{scenario}", f"{model}.*"):
                if f"{pattern}.{key}" in table:
                    return table[f"{pattern}.{key}"]
        return None


def for_model(model: str) -> str:
    """The rule set a model is judged by when ``--rules`` is not given."""
    for name in available():
        if model in RuleSet.load(name).models:
            return name
    return "deeprecsys"


def for_benchmark(benchmark: str) -> str:
    """The rule set whose benchmark names include ``benchmark`` (``dlrm-v2-99.9`` -> mlperf-v5.1)."""
    for name in available():
        rules = RuleSet.load(name)
        try:
            model, _ = rules.parse_benchmark(benchmark)
        except UnknownNameError:
            continue
        if model in rules.models:
            return name
    return "deeprecsys"
