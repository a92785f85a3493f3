"""A check report as text."""

from __future__ import annotations

from suite.check.catalogue import CheckReport


def table(report: CheckReport) -> str:
    """The findings as an aligned text table, then a one-line verdict."""
    rows = [(f.severity.value, f.rule, f.path, f.message) for f in report.findings]
    lines = []
    if rows:
        header = ("severity", "rule", "path", "message")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(3)]
        for row in (header, *rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=False)) + "  " + row[3])
    n_err = len(report.errors)
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"{verdict}: {len(report.runs)} run folder(s) checked, {n_err} error(s), {len(report.findings) - n_err} other finding(s)")
    return "\n".join(lines)
