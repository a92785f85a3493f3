"""Weight initialisation: values are a pure function of (seed, parameter, element), whatever the
chunking, thread count or device, and keep each layer's distribution."""

from __future__ import annotations

import math

import pytest
import torch

from suite.models import ModelSpec, build
from suite.models.init import BLOCK_ELEMENTS, Draw, fill_


def _filled(n: int, *, chunk_blocks: int, threads: int, name: str = "t.weight", seed: int = 0) -> torch.Tensor:
    out = torch.empty(n)
    fill_(out, Draw("normal", 0.5), seed, name, chunk_blocks=chunk_blocks, threads=threads)
    return out


def test_values_do_not_depend_on_chunk_size_or_threads() -> None:
    n = 3 * BLOCK_ELEMENTS + 12_345
    reference = _filled(n, chunk_blocks=1, threads=1)
    for chunk_blocks, threads in ((2, 2), (4, 1), (8, 3)):
        assert torch.equal(_filled(n, chunk_blocks=chunk_blocks, threads=threads), reference)


def test_a_shorter_parameter_is_a_prefix_and_names_and_seeds_differ() -> None:
    n = 2 * BLOCK_ELEMENTS + 7
    long = _filled(n, chunk_blocks=1, threads=2)
    short = _filled(BLOCK_ELEMENTS + 100, chunk_blocks=3, threads=1)
    # Whole blocks are shared; the partial last block of the shorter one is its own stream.
    assert torch.equal(short[:BLOCK_ELEMENTS], long[:BLOCK_ELEMENTS])
    assert not torch.equal(_filled(1000, chunk_blocks=1, threads=1, name="u.weight"), long[:1000])
    assert not torch.equal(_filled(1000, chunk_blocks=1, threads=1, seed=1), long[:1000])


def test_draws_follow_the_recorded_distribution() -> None:
    values = _filled(BLOCK_ELEMENTS + 5, chunk_blocks=1, threads=1)
    assert abs(values.mean().item()) < 0.005 and values.std().item() == pytest.approx(0.5, rel=0.01)
    uniform = torch.empty(100_000)
    fill_(uniform, Draw("uniform", 0.25), 3, "g.weight")
    assert uniform.min().item() >= -0.25 and uniform.max().item() <= 0.25
    assert uniform.std().item() == pytest.approx(0.25 / math.sqrt(3), rel=0.02)


def test_table_rows_at_a_smaller_scale_are_the_larger_tables_prefix() -> None:
    """A value is a function of its element index: the whole blocks of a table capped at fewer rows
    are the larger table's, and the dense layers do not depend on the tables at all."""
    smaller = build(ModelSpec(name="dlrm-rmc1", scale="40000")).state_dict()
    larger = build(ModelSpec(name="dlrm-rmc1", scale="70000")).state_dict()
    table = "embeddings.0.weight"
    rows = BLOCK_ELEMENTS // smaller[table].shape[1]
    assert smaller[table].shape[0] > rows and larger[table].shape[0] > smaller[table].shape[0]
    assert torch.equal(smaller[table][:rows], larger[table][:rows])
    assert torch.equal(smaller["top.0.weight"], larger["top.0.weight"])


def test_build_in_bf16_is_the_fp32_weights_rounded() -> None:
    spec = ModelSpec(name="dlrm-v2", scale="tiny")
    fp32, bf16 = build(spec).state_dict(), build(spec, dtype=torch.bfloat16, threads=1).state_dict()
    for key, value in fp32.items():
        assert bf16[key].dtype == torch.bfloat16
        assert torch.equal(bf16[key], value.to(torch.bfloat16)), key


@pytest.mark.cuda
def test_build_on_the_gpu_gives_the_cpu_weights() -> None:
    spec = ModelSpec(name="dlrm-v2", scale="small")
    cpu = build(spec).state_dict()
    gpu = build(spec, device="cuda", dtype=torch.bfloat16).state_dict()
    for key, value in cpu.items():
        assert gpu[key].device.type == "cuda"
        assert torch.equal(gpu[key].cpu(), value.to(torch.bfloat16)), key
    gpu32 = build(spec, device="cuda").state_dict()
    assert all(torch.equal(gpu32[k].cpu(), v) for k, v in cpu.items())


@pytest.mark.parametrize("width", [512, 300])
def test_rows_drawn_alone_are_the_whole_parameters_rows(width: int) -> None:
    """draw_rows gives exactly the rows fill_ puts in the whole parameter, in the order asked,
    repeats included; with a width that does not divide a block, rows spanning two blocks too."""
    from suite.models.init import draw_rows

    rows_total = 3 * BLOCK_ELEMENTS // width + 5
    whole = torch.empty(rows_total, width)
    draw = Draw("normal", 0.5)
    fill_(whole, draw, 7, "items.weight", threads=2)
    spanning = BLOCK_ELEMENTS // width  # the row holding the first block boundary
    rows = torch.tensor([rows_total - 1, 0, spanning, spanning + 1, 3, 3, 2 * BLOCK_ELEMENTS // width])
    assert torch.equal(draw_rows(draw, 7, "items.weight", rows, (rows_total, width), threads=3), whole[rows])
    assert draw_rows(draw, 7, "items.weight", torch.tensor([], dtype=torch.long), (rows_total, width)).shape == (0, width)


def test_a_model_built_with_some_rows_of_a_table_holds_exactly_those() -> None:
    """build(rows=...) makes the named tables of only those rows, each the seeded whole table's,
    and leaves every other parameter as a plain build makes it."""
    spec = ModelSpec(name="dlrm-v3", scale="tiny")
    whole = build(spec).state_dict()
    rows = torch.tensor([999, 4, 4, 500])
    part = build(spec, rows={"items": rows}).state_dict()
    assert torch.equal(part["items.weight"], whole["items.weight"][rows])
    assert all(torch.equal(part[k], v) for k, v in whole.items() if k != "items.weight")
    with pytest.raises(TypeError, match="'layers' is not an embedding table"):
        build(spec, rows={"layers": rows})
