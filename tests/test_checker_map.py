"""docs/mlperf-checker-map.md: every rule id it names is in the catalogue, and every test it names
exists (the parametrized case too), so the map cannot drift from the checks and their tests."""

from __future__ import annotations

import re

from conftest import REPO

from suite.check import RULES

MAP = REPO / "docs" / "mlperf-checker-map.md"
#: The map's shorthands for the two parametrized tamper tests.
SHORT = {
    "alone": "tests/test_submit.py::test_each_mlperf_rule_alone",
    "tamper": "tests/test_check.py::test_each_tamper_is_caught_with_its_rule",
}
#: What a row says instead of a rule id where the check does not fire on dlrm-v2 or is not ours to make.
NO_RULE = ("n/a", "none, by design", "**not checked**", "the rule table's")


def rows() -> list[list[str]]:
    """The numbered rows of the map's tables, as cells (number, check, where, suite check, test)."""
    out = []
    for line in MAP.read_text().splitlines():
        if re.match(r"^\| \d+ \|", line):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 5, line
            out.append(cells)
    return out


def rule_ids(cell: str) -> list[str]:
    prefixes = {rule.split(".")[0] for rule in RULES}
    tokens = re.findall(r"`([a-z0-9.-]+)`", cell)
    # accuracy.txt is a file MLPerf names, not a rule.
    return [t for t in tokens if t.split(".")[0] in prefixes and "." in t and not re.search(r"\.(txt|json|md|toml)$", t)]


def test_rows_are_numbered_in_order() -> None:
    numbers = [int(row[0]) for row in rows()]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 80


def test_every_rule_id_in_the_map_is_in_the_catalogue() -> None:
    named = {rule for row in rows() for rule in rule_ids(row[3])}
    assert named - set(RULES) == set()
    assert {"loadgen.result", "submission.power-samples", "settings.min-query-count"} <= named


def test_every_row_names_a_rule_and_a_test_or_says_why_not() -> None:
    for number, _check, where, answer, test in rows():
        assert re.fullmatch(r"L\d+(, L\d+)*( \(`\w+`\))?", where), (number, where)
        if rule_ids(answer) or answer.startswith("the same rules"):
            assert test, f"row {number} names no test"
        else:
            assert answer.startswith(NO_RULE), f"row {number}: {answer!r} names no rule id"


def test_every_test_the_map_names_exists() -> None:
    missing = []
    for number, *_, cell in rows():
        for ref in re.findall(r"`([^`]+)`", cell):
            short = re.fullmatch(r"(\w+)\[([^\]]+)\]", ref)
            node = f"{SHORT[short[1]]}[{short[2]}]" if short else ref
            path, _, name = node.partition("::")
            func, _, param = name.partition("[")
            param = param.rstrip("]")
            text = (REPO / path).read_text() if (REPO / path).is_file() else ""
            ok = f"def {func}(" in text
            if ok and param:
                fn, _, rule = param.partition("-")
                # tamper[<function>-<rule>] is one (function, rule) pair of TAMPERS; other ids are quoted.
                ok = f'"{param}"' in text or (rule in RULES and (f'({fn}, "{rule}")' in text or (fn == "tamper" and f'), "{rule}")' in text)))
            if not ok:
                missing.append(f"row {number}: {node}")
    assert missing == []
