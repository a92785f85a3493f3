"""Session 26: does a plain TMA copy of one tile into shared memory run, by dtype, box and descriptor kind?
argv: dtype rows cols kind(device|host) [offset_bytes]. One launch, blocking; prints ok/bad."""
import sys
import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
from suite.backends.kernels import hstu

_tma_load = getattr(tma, "async_load", None) or tma.async_copy_global_to_shared


@gluon.jit
def _probe(x_ptr, host_desc, out_ptr, n_rows, n_cols, col0, R: gl.constexpr, C: gl.constexpr, PAD: gl.constexpr,
           HOST: gl.constexpr, num_warps: gl.constexpr):
    layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([R, C], x_ptr.dtype.element_ty)
    if HOST:
        desc = host_desc
    else:
        desc = tma.make_tensor_descriptor(x_ptr, shape=[n_rows, n_cols], strides=[n_cols, 1], block_shape=[R, C], layout=layout)
    if PAD > 0:
        pad = gl.allocate_shared_memory(x_ptr.dtype.element_ty, [PAD, C], layout)
    smem = gl.allocate_shared_memory(x_ptr.dtype.element_ty, [2, R, C], layout)
    bar = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
    mbarrier.init(bar.index(0), count=1)
    mbarrier.expect(bar.index(0), desc.block_type.nbytes)
    _tma_load(desc, [0, col0], bar.index(0), smem.index(1))
    mbarrier.wait(bar.index(0), 0)
    blocked: gl.constexpr = gl.BlockedLayout([1, 4], [4, 8], [num_warps, 1], [1, 0])
    x = smem.index(1).load(blocked)
    if PAD > 0:
        x = x + pad.load(blocked).to(x.dtype) * 0
    rows = gl.arange(0, R, layout=gl.SliceLayout(1, blocked))
    cols = gl.arange(0, C, layout=gl.SliceLayout(0, blocked))
    gl.store(out_ptr + rows[:, None] * C + cols[None, :], x)

