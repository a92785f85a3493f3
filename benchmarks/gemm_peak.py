"""This core's GEMM peaks and the dlrm-v2 samples/s per core they allow.

One thread, per CPU-second (``time.process_time``, so time slices other jobs take are not counted),
best of ``--repeats`` calls after a warm-up, for each arithmetic the CPU backends run:

* ``fp32``: ``nn.Linear``; ``bf16``: ``nn.Linear`` in bf16 (AVX-512 BF16 here, AMX where present);
* ``int8 dynamic``: the backend's ``Int8Linear`` (fbgemm ``linear_dynamic``: the fp32 input
  quantized per call, int32 accumulation, fp32 out): what ``--precision int8`` runs;
* ``int8 static``: fbgemm's ``quantized::linear`` on an input already in uint8 with a fixed scale,
  uint8 out: the kernel alone, the upper bound of any int8 path on this core;
* ``ort fp32`` and ``ort int8 dynamic``: the same layer as a one-MatMul ONNX model run by
  onnxruntime (one intra-op thread, no spinning), fp32 and as ``quantize_dynamic`` makes it with the
  onnxruntime backend's settings (per-channel int8 weights: ORT fuses it into one
  ``DynamicQuantizeMatMul``): whether ORT's int8 GEMM or the rest of its graph sets its pace.

Shapes: the 1024-cube (``benchmarks/cpu.py``'s yardstick) and dlrm-v2's own large layers at the
2,048-item batch runs use (cross network 3,456 -> 512 -> 3,456, top MLP 3,456 -> 1,024 -> 1,024),
plus dlrm-v2's whole dense stack per item (``ModelSpec.config.size().dense_flops_per_item``).
The cap: the rate over dlrm-v2's dense FLOPs per 270-item sample.

    .venv/bin/python benchmarks/gemm_peak.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from cpu import best_rate

from suite.models import ModelSpec, parse_scale
from suite.models.int8 import Int8Linear

SAMPLE_ITEMS = 270
#: (label, batch rows M, in K, out N)
SHAPES = [
    ("1024-cube", 1024, 1024, 1024),
    ("dlrm-v2 cross down 2048x3456->512", 2048, 3456, 512),
    ("dlrm-v2 cross up 2048x512->3456", 2048, 512, 3456),
    ("dlrm-v2 top 2048x3456->1024", 2048, 3456, 1024),
    ("dlrm-v2 top 2048x1024->1024", 2048, 1024, 1024),
]


def calls(m: int, k: int, n: int) -> dict[str, Callable[[], object]]:
    x = torch.randn(m, k)
    linear = torch.nn.Linear(k, n)
    bf16, xb = torch.nn.Linear(k, n).bfloat16(), x.bfloat16()
    dyn = Int8Linear(linear)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qx = torch.quantize_per_tensor(x.abs(), float(x.abs().max()) / 255, 0, torch.quint8)
    ort_fp32, ort_int8 = ort_sessions(linear)
    xn = x.numpy()
    return {
        "fp32": lambda: linear(x),
        "bf16": lambda: bf16(xb),
        "int8 dynamic": lambda: dyn(x),
        "int8 static": lambda: torch.ops.quantized.linear(qx, dyn.packed, 0.05, 0),
        "ort fp32": lambda: ort_fp32.run(None, {"x": xn}),
        "ort int8 dynamic": lambda: ort_int8.run(None, {"x": xn}),
    }


def ort_sessions(linear: torch.nn.Linear) -> tuple[object, object]:
    """onnxruntime sessions of ``x @ W.T + b`` at fp32 and quantized as the onnxruntime backend does."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    w = linear.weight.detach().numpy().T.copy()
    b = linear.bias.detach().numpy().copy()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, fp32)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        return (ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"]),
                ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's "consider pre-processing" advice
    torch.set_num_threads(1)
    per_item = ModelSpec(name="dlrm-v2", scale="small").config.size(parse_scale("small")).dense_flops_per_item
    per_sample = per_item * SAMPLE_ITEMS
    print(f"# {os.uname().nodename}: torch {torch.__version__}, one thread, load average at start {os.getloadavg()}")
    print(f"# dlrm-v2 dense work: {per_item / 1e6:.2f} MFLOP per item, {per_sample / 1e9:.2f} GFLOP per {SAMPLE_ITEMS}-item sample")
    print("| shape | arithmetic | G(FL)OP/s per core | dlrm-v2 cap, samples/s per core |")
    print("| --- | --- | ---: | ---: |")
    with torch.inference_mode():
        for label, m, k, n in SHAPES:
            for name, call in calls(m, k, n).items():
                rate = best_rate(call, 2.0 * m * k * n, args.repeats)
                print(f"| {label} | {name} | {rate / 1e9:,.0f} | {rate / per_sample:.1f} |", flush=True)
    print(f"# load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
