"""Backends: one literal registry from CLI name to ``module:Class``, imported only when chosen.

``suite --help`` therefore imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import importlib

from suite.backends.base import Backend, BackendConfig, BackendInfo, Option, Tunable
from suite.errors import BackendUnavailableError, UnknownNameError

REGISTRY: dict[str, str] = {
    "null": "suite.backends.null:NullBackend",
    "torch-cpu": "suite.backends.torch_cpu:TorchCPUBackend",
    "torch-cuda": "suite.backends.torch_cuda:TorchCUDABackend",
    "onnxruntime": "suite.backends.onnxruntime:OnnxRuntimeBackend",
    # A scheduler over the others: CPU workers and an optional accelerator, by their names here.
    "deeprecsched": "suite.backends.deeprecsched:DeepRecSchedBackend",
}

__all__ = ["REGISTRY", "Backend", "BackendConfig", "BackendInfo", "Option", "Tunable", "get_backend"]


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not in :data:`REGISTRY`.
        BackendUnavailableError: its framework is not installed here.
    """
    try:
        target = REGISTRY[name]
    except KeyError:
        raise UnknownNameError("backend", name, REGISTRY) from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} is not available here: {exc}") from None
    cls: type[Backend] = getattr(module, class_name)
    return cls
