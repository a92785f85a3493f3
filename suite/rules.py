"""Rule tables as data: ``rules/<name>.toml`` read with the standard library.

A rule set maps ``model.Scenario.key`` to a value, like LoadGen's ``mlperf.conf``, and looks keys
up in LoadGen's order: ``model.Scenario``, ``*.Scenario``, ``model.*``, ``*.*``. Profiles
(``smoke``, ``short``, ``official``) are tables of the same form whose entries win over the base
settings. The harness builds LoadGen's TestSettings from these tables, so what is run and what is
checked come from one place.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.errors import ConfigError, UnknownNameError

_MISSING = object()


def rules_dir() -> Path:
    """The folder of rule tables: ``$RECSUITE_RULES_DIR`` or the repository's ``rules/``."""
    env = os.environ.get("RECSUITE_RULES_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "rules"


def available() -> list[str]:
    """Names of the rule sets on disk."""
    return sorted(p.stem for p in rules_dir().glob("*.toml"))


@dataclass(frozen=True)
class RuleSet:
    """One rule table: its ``meta``, base ``settings`` and named ``profiles``."""

    name: str
    meta: Mapping[str, Any]
    settings: Mapping[str, Any]
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str) -> RuleSet:
        path = rules_dir() / f"{name}.toml"
        if not path.is_file():
            raise UnknownNameError("rules", name, available())
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"rule table {path} is unreadable: {exc}") from None
        return cls(
            name=name,
            meta=data.get("meta", {}),
            settings=data.get("settings", {}),
            profiles=data.get("profiles", {}),
        )

    @property
    def models(self) -> list[str]:
        return list(self.meta.get("models", []))

    def loadgen_model(self, model: str) -> str:
        """The model key LoadGen's config lookup should use for ``model``."""
        return str(self.meta.get("loadgen_model", {}).get(model, model))

    def check_profile(self, profile: str) -> None:
        if profile not in self.profiles:
            raise UnknownNameError("profile", profile, self.profiles)

    def get(self, model: str, scenario: str, key: str, profile: str | None = None, default: Any = _MISSING) -> Any:
        """The value of ``key`` for (model, scenario), the profile's entries first."""
        tables = ([self.profiles[profile]] if profile else []) + [self.settings]
        for table in tables:
            for pattern in (f"{model}.{scenario}", f"*.{scenario}", f"{model}.*", "*.*"):
                value = table.get(f"{pattern}.{key}", _MISSING)
                if value is not _MISSING:
                    return value
        if default is _MISSING:
            raise ConfigError(f"rule set {self.name!r} has no {key!r} for {model} {scenario}")
        return default


def for_model(model: str) -> str:
    """The rule set a model is judged by when ``--rules`` is not given."""
    for name in available():
        if model in RuleSet.load(name).models:
            return name
    return "deeprecsys"
