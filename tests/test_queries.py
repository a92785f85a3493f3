"""Query-size specs and how queries are laid over items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from suite.datasets.queries import QuerySizes
from suite.errors import ConfigError


def test_mlperf_distribution_has_mean_270() -> None:
    sizes = QuerySizes.parse("mlperf").draw(np.random.default_rng(0), 200_000)
    assert set(np.unique(sizes)) == {100, 200, 300, 400, 500, 600, 700}
    assert sizes.mean() == pytest.approx(270, rel=0.01)


@pytest.mark.parametrize(
    ("spec", "mean"),
    [("lognormal:5.1,0.2", 167.3), ("normal:165,16", 165.0), ("fixed:64", 64.0)],
)
def test_parametric_specs(spec: str, mean: float) -> None:
    sizes = QuerySizes.parse(spec).draw(np.random.default_rng(0), 100_000)
    assert sizes.mean() == pytest.approx(mean, rel=0.01)


def test_sizes_are_clipped_to_1_1024() -> None:
    sizes = QuerySizes.parse("normal:600,2000").draw(np.random.default_rng(0), 10_000)
    assert sizes.min() == 1 and sizes.max() == 1024


def test_quantile_file(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("10, 20\n30\n")
    sizes = QuerySizes.parse(f"file:{path}").draw(np.random.default_rng(0), 30_000)
    assert set(np.unique(sizes)) == {10, 20, 30}


def test_offsets_cover_the_items_exactly() -> None:
    offsets = QuerySizes.parse("mlperf").offsets(10_007, seed=3)
    assert offsets[0] == 0 and offsets[-1] == 10_007
    assert np.all(np.diff(offsets) > 0)
    assert np.array_equal(offsets, QuerySizes.parse("mlperf").offsets(10_007, seed=3))


def test_a_quantile_list_is_laid_stratified_so_a_small_library_keeps_its_mean() -> None:
    """Every size of the list once per pass of 20 queries: DLRM-v2's default library (131,072 items,
    485 queries) averages MLPerf's 270 items, where independent draws (the records before schema
    version 2) made 467 queries of 280.7 on average, and 4% fewer samples a second."""
    quantiles = sorted(QuerySizes.parse("mlperf").quantiles)
    sizes = np.diff(QuerySizes.parse("mlperf").offsets(131_072, seed=0))
    passes = len(sizes) // len(quantiles)
    assert passes == 24
    for k in range(passes):
        assert sorted(sizes[k * 20 : (k + 1) * 20]) == quantiles
    assert sizes[: passes * 20].mean() == 270
    independent = np.diff(QuerySizes.parse("mlperf").offsets(131_072, seed=0, stratified=False))
    assert (len(independent), round(independent.mean(), 1)) == (467, 280.7)
    assert np.array_equal(QuerySizes.parse("lognormal:5.1,0.2").offsets(10_000, seed=1),
                          QuerySizes.parse("lognormal:5.1,0.2").offsets(10_000, seed=1, stratified=False))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("poisson:3", "'query-size' must start with one of ['file', 'fixed', 'lognormal', 'mlperf', 'normal'] (got 'poisson:3')"),
        ("lognormal:5.1", "'query-size' lognormal needs 2 number(s) (got 'lognormal:5.1')"),
        ("fixed:0", "'query-size' fixed must be an integer in [1, 1024] (got 'fixed:0')"),
        ("normal:a,b", "'query-size' normal needs finite numbers (got 'normal:a,b')"),
        ("file:/nonexistent/q.txt", "'query-size' file '/nonexistent/q.txt' cannot be read: No such file or directory"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        QuerySizes.parse(spec)
    assert str(info.value) == message
