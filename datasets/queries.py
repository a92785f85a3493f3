"""Query sizes: each LoadGen sample is one user query of k candidate items.

Specs (``--query-size``), each clipped to [1, 1024] items:

* ``mlperf``: MLPerf DLRM's ``dist_quantile.txt`` (an inverse CDF in 5% steps; mean 270).
* ``lognormal:MU,SIGMA``: ``exp(N(MU, SIGMA))``, DeepRecSys's scripts use ``lognormal:5.1,0.2``.
* ``normal:MEAN,STD``: DeepRecSys's ``normal(165, 16)``.
* ``fixed:N``.
* ``file:PATH``: a quantile file in MLPerf's form (comma- or newline-separated sizes, each equally
  likely: an inverse CDF).

Queries are laid over the dataset's items in order, as MLPerf's ``multihot_criteo.py`` does: query
i covers items ``[offsets[i], offsets[i + 1])`` and the last one is truncated at the end. A quantile
list's sizes are laid stratified (:meth:`QuerySizes.offsets`), so a small library's mean query is the
list's mean.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.errors import ConfigError
from suite.inputs import read_small_file

MAX_QUERY_ITEMS = 1024

#: ``recommendation/dlrm_v2/pytorch/tools/dist_quantile.txt`` of mlcommons/inference.
MLPERF_QUANTILES = (100, 100, 200, 200, 200, 200, 200, 200, 200, 200,
                    200, 200, 200, 200, 300, 300, 400, 500, 600, 700)  # fmt: skip

KINDS = ("file", "fixed", "lognormal", "mlperf", "normal")

#: Parameter ranges of the distributions, ((centre lo, hi), (spread lo, hi)): the median query lies in
#: [1, 1024] items and the spread is positive and finite. Outside them every draw clips to one bound.
BOUNDS = {
    "lognormal": ((0.0, round(math.log(MAX_QUERY_ITEMS), 3)), (0.0, 3.0)),
    "normal": ((1.0, float(MAX_QUERY_ITEMS)), (0.0, 4.0 * MAX_QUERY_ITEMS)),
}
#: A quantile file is read only up to this size, and holds at most this many sizes.
MAX_FILE_BYTES = 1 << 20
MAX_QUANTILES = 100_000

# ASCII decimal numbers only: float() also takes 'nan', 'inf', '1_0' and other scripts' digits.
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class QuerySizes:
    """A parsed ``--query-size`` spec that draws query sizes."""

    spec: str
    kind: str
    params: tuple[float, ...]
    quantiles: tuple[int, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> QuerySizes:
        kind, _, arg = spec.partition(":")
        if kind not in KINDS:
            raise ConfigError(f"'query-size' must start with one of {list(KINDS)} (got {spec!r})")
        if kind == "mlperf":
            if arg:
                raise ConfigError(f"'query-size' mlperf takes no argument (got {spec!r})")
            return cls(spec, "file", (), MLPERF_QUANTILES)
        if kind == "file":
            if not arg:
                raise ConfigError(f"'query-size' file needs a path (got {spec!r})")
            return cls(spec, "file", (), _read_quantiles(Path(arg)))
        texts = arg.split(",")
        if not all(t.strip().isascii() and _NUMBER.fullmatch(t.strip()) for t in texts):
            raise ConfigError(f"'query-size' {kind} needs finite numbers (got {spec!r})")
        params = tuple(float(t) for t in texts)
        want = {"fixed": 1, "lognormal": 2, "normal": 2}[kind]
        if len(params) != want:
            raise ConfigError(f"'query-size' {kind} needs {want} number(s) (got {spec!r})")
        if kind == "fixed" and not (1 <= params[0] <= MAX_QUERY_ITEMS and params[0].is_integer()):
            raise ConfigError(f"'query-size' fixed must be an integer in [1, {MAX_QUERY_ITEMS}] (got {spec!r})")
        if kind in ("lognormal", "normal"):
            (lo, hi), (_, top) = BOUNDS[kind]
            centre, spread = params
            if not lo <= centre <= hi:
                raise ConfigError(
                    f"'query-size' {kind} needs {'MU' if kind == 'lognormal' else 'MEAN'} in [{lo:g}, {hi:g}] "
                    f"(a median query in [1, {MAX_QUERY_ITEMS}] items) (got {spec!r})"
                )
            if not 0 < spread <= top:
                raise ConfigError(
                    f"'query-size' {kind} needs {'SIGMA' if kind == 'lognormal' else 'STD'} in (0, {top:g}] "
                    f"(fixed:N for one size) (got {spec!r})"
                )
        return cls(spec, kind, params)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` query sizes as int64, clipped to [1, 1024]."""
        if self.kind == "file":
            sizes = np.asarray(self.quantiles, dtype=np.float64)[rng.integers(0, len(self.quantiles), n)]
        elif self.kind == "fixed":
            sizes = np.full(n, self.params[0])
        elif self.kind == "lognormal":
            sizes = rng.lognormal(self.params[0], self.params[1], n)
        else:
            sizes = rng.normal(self.params[0], self.params[1], n)
        return np.clip(np.rint(sizes), 1, MAX_QUERY_ITEMS).astype(np.int64)

    def offsets(self, items: int, seed: int, *, stratified: bool = True) -> np.ndarray:
        """Query boundaries over ``items`` items: int64 array of length queries + 1.

        A quantile list (``mlperf``, ``file:``) is laid stratified: every size of the list once per
        pass, each pass in its own random order, so the library's mean query is the list's mean
        however few queries it holds. MLPerf's library holds 204,800 queries, whose mean is 270 to
        within a tenth of a percent; drawn independently, DLRM-v2's default 131,072 items made 467
        queries averaging 280.7 items (stratified: 485 of 270.25), and samples/s came out 4% low. ``stratified=False`` gives the
        independent draws that records before schema version 2 were run with.
        """
        rng = np.random.default_rng(seed)
        sizes: list[np.ndarray] = []
        total = 0
        if self.kind == "file" and stratified and items > 0:
            quantiles = np.clip(np.asarray(self.quantiles, dtype=np.int64), 1, MAX_QUERY_ITEMS)
            passes = items // int(quantiles.sum()) + 1
            sizes.append(quantiles[rng.permuted(np.tile(np.arange(len(quantiles)), (passes, 1)), axis=1).ravel()])
            total = int(sizes[0].sum())
        while total < items:
            draw = self.draw(rng, max(1024, (items - total) // 100))
            sizes.append(draw)
            total += int(draw.sum())
        cum = np.cumsum(np.concatenate(sizes)) if sizes else np.zeros(0, dtype=np.int64)
        cut = int(np.searchsorted(cum, items))
        bounds = np.concatenate([[0], cum[:cut], [items]]).astype(np.int64)
        return np.unique(bounds)


def _read_quantiles(path: Path) -> tuple[int, ...]:
    """The sizes of a quantile file: a regular file of at most 1 MiB, sizes in [1, 1024]."""
    data = read_small_file("'query-size' file", path, MAX_FILE_BYTES)
    words = [v.strip() for v in data.decode("ascii", errors="replace").replace("\n", ",").split(",") if v.strip()]
    if not all(w.isascii() and w.isdigit() for w in words):
        raise ConfigError(f"'query-size' file {str(path)!r} must hold comma-separated integers")
    values = tuple(int(w) for w in words)
    if not values or len(values) > MAX_QUANTILES or any(not 1 <= v <= MAX_QUERY_ITEMS for v in values):
        raise ConfigError(
            f"'query-size' file {str(path)!r} must hold 1 to {MAX_QUANTILES} sizes in [1, {MAX_QUERY_ITEMS}]"
        )
    return values
