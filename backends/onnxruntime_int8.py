"""int8 forms of an exported model, made with onnxruntime's quantization tooling and cached beside it.

Two forms, chosen by the onnxruntime backend's ``quantization`` option:

* ``dynamic`` (the default): ``quantize_dynamic`` over MatMul, Gemm and Gather. Dense weights become
  int8 with one scale per output channel, their inputs are quantized per call from their own range
  (``DynamicQuantizeLinear``, as torch-cpu's int8 does), and the embedding tables are stored as
  uint8 (one scale per table) and dequantized after the Gather. No calibration data.
* ``qdq``: ``quantize_static`` in QDQ format (QuantizeLinear/DequantizeLinear pairs that ORT fuses
  into integer kernels) with every activation's scale fixed by a calibration pass over
  :data:`CALIBRATION_ITEMS` items drawn by the suite's synthetic generator for the model (not the
  run's own data: the backend is loaded before the harness hands it the items).

Measured on this project's 2-core AMD EPYC (docs/cpu-speed.md), ``dynamic`` was both faster and
closer to fp32 than ``qdq`` on dlrm-v2, so it is the default.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from suite.models import ModelSpec
from suite.models.export import staged_output

MODES = ("dynamic", "qdq")
CALIBRATION_ITEMS = 512
CALIBRATION_BATCH = 128
QUANTIZED_OPS = ["MatMul", "Gemm", "Gather"]


def quantized_path(source: Path, mode: str) -> Path:
    """Where the int8 form of ``source`` is cached."""
    return source.with_name(f"{source.stem}-int8-{mode}.onnx")


def quantize(source: Path, spec: ModelSpec, mode: str, inputs: list[str]) -> Path:
    """The int8 form of the exported model ``source`` (made once, atomically, then reused)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    path = quantized_path(source, mode)
    if path.is_file():
        return path
    external = any(p.name.startswith(source.name + ".") for p in source.parent.iterdir())

    def published(produced: Path) -> bool:
        # The model and its external data; not the scratch files quantize_static leaves beside them.
        return produced.suffix in (".onnx", ".data") or produced.name.startswith(path.name)

    with staged_output(path, keep=published) as tmp, _quiet():
        if mode == "dynamic":
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=QUANTIZED_OPS, use_external_data_format=external)
        else:
            feeds = _calibration_feeds(spec, inputs)

            class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type hints: its base class is Any
                def __init__(self) -> None:
                    self._feeds = iter(feeds)

                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(self._feeds, None)

            quantize_static(str(source), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=QUANTIZED_OPS, use_external_data_format=external)
    return path


def _calibration_feeds(spec: ModelSpec, inputs: list[str]) -> list[dict[str, np.ndarray]]:
    """:data:`CALIBRATION_ITEMS` generated items as session feeds of :data:`CALIBRATION_BATCH` items."""
    from suite.datasets import synthetic
    from suite.datasets.multihot import model_inputs

    schema = spec.schema
    rng = np.random.default_rng([spec.seed, CALIBRATION_ITEMS, 18])
    items = model_inputs(synthetic.features(schema, CALIBRATION_ITEMS, rng), schema)
    feeds = []
    for start in range(0, CALIBRATION_ITEMS, CALIBRATION_BATCH):
        end = start + CALIBRATION_BATCH
        feed = {inputs[0]: items.dense[start:end]}
        feed.update({name: ids[start:end] for name, ids in zip(inputs[1:], items.sparse, strict=False)})
        feeds.append(feed)
    return feeds


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the quantizer's advice ("consider pre-processing") out of the user's terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
