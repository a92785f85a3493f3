"""Trained weights from a file (``--weights FILE``), checked against the model before anything runs.

Two formats, told apart by their first bytes (not the file name): safetensors, and a state_dict
saved by ``torch.save`` and read back with ``torch.load(weights_only=True)`` (no code is unpickled).
Either holds one tensor per key of the model's ``state_dict()``; every key and shape must match,
and the first missing key, unexpected key or shape mismatch is the one-line error. The file's
SHA-256 is taken once when the option is read (:meth:`WeightsFile.of`) and recorded with the run;
every process that builds the model (each DeepRecSched worker included) checks the file still has it.

Importing this module does not import torch; the functions that read tensors do.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from suite.models import ModelSpec

log = logging.getLogger(__name__)

#: Formats by the name recorded with the run.
SAFETENSORS, TORCH = "safetensors", "torch"


@dataclass(frozen=True, kw_only=True)
class WeightsFile:
    """A weights file and the SHA-256 of its bytes when the run was configured."""

    path: Path
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ConfigError(f"'weights' sha256 must be 64 lowercase hex digits (got {self.sha256!r})")

    @classmethod
    def of(cls, path: Path) -> WeightsFile:
        """The file at ``path`` with its SHA-256 (a missing or unreadable file is a ConfigError)."""
        return cls(path=path.resolve(), sha256=sha256_file(path))

    @property
    def format(self) -> str:
        """``safetensors`` or ``torch``, from the file's first bytes."""
        return file_format(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "format": self.format}


def sha256_file(path: Path) -> str:
    """The SHA-256 of ``path``'s bytes, hex."""
    if not path.is_file():
        raise ConfigError(f"'weights' file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise ConfigError(f"'weights' file {str(path)!r} cannot be read ({exc.strerror})") from None


def file_format(path: Path) -> str:
    """``safetensors`` (an 8-byte header length, then a JSON object) or ``torch`` (anything else)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as exc:
        raise ConfigError(f"'weights' file {str(path)!r} cannot be read ({exc.strerror})") from None
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < path.stat().st_size:
        return SAFETENSORS
    return TORCH


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(magic)) == magic


def _bad(weights: WeightsFile, what: str) -> ConfigError:
    return ConfigError(f"'weights' file {str(weights.path)!r} {what}")


@contextmanager
def open_tensors(weights: WeightsFile) -> Iterator[Mapping[str, Any]]:
    """The file's tensors by key, read lazily where the format allows (safetensors: one tensor per
    access; torch: memory-mapped), so a full-scale file is never held twice in memory."""
    import torch

    if weights.format == SAFETENSORS:
        from safetensors import safe_open

        try:
            handle = safe_open(str(weights.path), framework="pt")
        except Exception as exc:
            raise _bad(weights, f"is not a readable safetensors file ({_first_line(exc)})") from None
        with handle as f:
            yield _SafeTensors(f)
        return
    # mmap needs torch.save's zip format; the legacy format is read whole.
    zipped = _starts_with(weights.path, b"PK")
    try:
        loaded = torch.load(weights.path, map_location="cpu", weights_only=True, mmap=zipped)
    except Exception as exc:
        raise _bad(
            weights, f"is neither safetensors nor a state_dict torch.load(weights_only=True) reads ({_first_line(exc)})"
        ) from None
    if not isinstance(loaded, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()):
        raise _bad(weights, f"holds a {type(loaded).__name__}, not a state_dict of named tensors")
    yield loaded


class _SafeTensors(Mapping[str, Any]):
    """A safetensors file as a read-only mapping of key -> tensor (read on access) with cheap shapes."""

    def __init__(self, handle: Any) -> None:
        self._f = handle
        self._keys = list(handle.keys())

    def __getitem__(self, key: str) -> Any:
        return self._f.get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._f.get_slice(key).get_shape())


def _shapes(tensors: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    if isinstance(tensors, _SafeTensors):
        return {k: tensors.shape(k) for k in tensors}
    return {k: tuple(v.shape) for k, v in tensors.items()}


def mismatch(expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]) -> str | None:
    """The first difference between the model's keys and shapes and the file's, in words, or None.

    Missing keys come first (in the model's order), then unexpected ones (in the file's), then
    shapes: a file for another model usually lacks the first key, which says the most.
    """
    missing = [k for k in expected if k not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        return f"lacks the model's key {missing[0]!r}{more}"
    unexpected = [k for k in found if k not in expected]
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        return f"has a key the model lacks: {unexpected[0]!r}{more}"
    for key, shape in expected.items():
        if tuple(found[key]) != tuple(shape):
            return f"has {key!r} of shape {list(found[key])}, the model's is {list(shape)}"
    return None


def expected_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every ``state_dict`` key of ``spec``'s model with its shape, built on torch's meta device
    (no memory, no initialisation: a full-scale model costs nothing)."""
    from suite.models.init import Init, on_meta

    config = spec.config
    cls = config.module_class()
    with on_meta():
        model = cls(config, spec.schema, Init())
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def verify(spec: ModelSpec) -> None:
    """Check ``spec``'s weights file against the model's keys and shapes, before anything is loaded
    or written. Raises ConfigError naming the first difference.

    A model whose construction the meta device cannot run is left to :func:`load_into`, which
    makes the same check on the built model (then after ``config.json`` is written)."""
    weights = spec.weights
    if weights is None:
        return
    try:
        expected = expected_shapes(spec)
    except Exception:
        log.debug("no meta-device build of %s; its weights are checked when it is built", spec.name, exc_info=True)
        expected = None
    with open_tensors(weights) as tensors:
        found = _shapes(tensors)
        problem = None if expected is None else mismatch(expected, found)
        if problem is None:
            problem = _non_float(tensors)
    if problem is not None:
        raise _bad(weights, f"does not fit {spec.name} at scale {spec.scale}: {problem}")


def _non_float(tensors: Mapping[str, Any]) -> str | None:
    if isinstance(tensors, _SafeTensors):
        dtypes = {k: tensors._f.get_slice(k).get_dtype() for k in tensors}
        bad = next((k for k, d in dtypes.items() if not d.startswith(("F", "BF"))), None)
        return None if bad is None else f"{bad!r} is {dtypes[bad]}, not floating point"
    bad = next((k for k, v in tensors.items() if not v.dtype.is_floating_point), None)
    return None if bad is None else f"{bad!r} is {tensors[bad].dtype}, not floating point"


def load_into(model: torch.nn.Module, weights: WeightsFile, spec: ModelSpec) -> None:
    """Copy the file's tensors into ``model`` (keys and shapes checked, values cast to each
    parameter's dtype), after checking the file still has the SHA-256 the run recorded."""
    import torch

    digest = sha256_file(weights.path)
    if digest != weights.sha256:
        raise _bad(weights, f"changed since the run was configured (sha256 {digest[:12]}..., recorded {weights.sha256[:12]}...)")
    state = model.state_dict()
    with open_tensors(weights) as tensors:
        problem = mismatch({k: tuple(v.shape) for k, v in state.items()}, _shapes(tensors)) or _non_float(tensors)
        if problem is not None:
            raise _bad(weights, f"does not fit {spec.name} at scale {spec.scale}: {problem}")
        with torch.no_grad():
            for key, target in state.items():
                target.copy_(tensors[key])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
