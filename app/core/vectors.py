"""Item vectors: explicit embeddings or a deterministic signed feature hash of tags.

All vectors are 1-D ``float32`` arrays of dimension ``dim`` (default :data:`DEFAULT_DIM`),
L2-normalised; "no vector" is ``None``.

Tag hashing (part of the contract, changing it changes every stored profile):

* a tag is normalised with ``tag.strip().lower()``; empty tags are ignored and duplicate
  tags (after normalisation) count once;
* ``blake2b(tag UTF-8, digest_size=16, person=b"nbo-tag-v1")`` gives two 64-bit
  little-endian words ``h1``, ``h2``; probe 1 is index ``(h1 >> 1) % dim`` with sign
  ``+1`` if ``h1`` is odd else ``-1``; probe 2 is index
  ``(i1 + 1 + (h2 >> 1) % (dim - 1)) % dim`` (always different from probe 1, so the two
  probes never cancel) with the sign from the low bit of ``h2``;
* each probe adds its sign; the sum over tags is L2-normalised.

``blake2b`` rather than ``hash()``, which is salted per process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from app.core import defaults

DEFAULT_DIM = defaults.VECTOR_DIM
"""Default vector dimension D."""
HASH_PROBES = 2
"""Probes (index, sign) per hashed tag."""
_PERSON = b"nbo-tag-v1"

Vector = npt.NDArray[np.float32]


def check_dim(dim: int) -> int:
    """Return ``dim`` if it is a usable dimension (>= 2), else raise ``ValueError``."""
    if dim < 2:
        raise ValueError(f"vector dimension must be >= 2, got {dim}")
    return dim


def normalise_tag(tag: str) -> str:
    """The canonical form of a tag: stripped and lower-cased."""
    return tag.strip().lower()


def tag_probes(tag: str, dim: int = DEFAULT_DIM) -> tuple[tuple[int, float], ...]:
    """The :data:`HASH_PROBES` ``(index, sign)`` pairs of an already-normalised tag."""
    check_dim(dim)
    digest = hashlib.blake2b(tag.encode("utf-8"), digest_size=16, person=_PERSON).digest()
    h1 = int.from_bytes(digest[:8], "little")
    h2 = int.from_bytes(digest[8:], "little")
    i1 = (h1 >> 1) % dim
    i2 = (i1 + 1 + (h2 >> 1) % (dim - 1)) % dim
    return ((i1, 1.0 if h1 & 1 else -1.0), (i2, 1.0 if h2 & 1 else -1.0))


def unit(values: npt.ArrayLike) -> Vector | None:
    """L2-normalise to ``float32``; ``None`` if the norm is zero or not finite."""
    arr = np.asarray(values, dtype=np.float64)
    norm = float(np.linalg.norm(arr))
    if norm == 0.0 or not np.isfinite(norm):
        return None
    return (arr / norm).astype(np.float32)


def hash_tags(tags: Iterable[str], dim: int = DEFAULT_DIM) -> Vector | None:
    """The unit signed feature-hash vector of ``tags``, or ``None`` when there is no tag."""
    check_dim(dim)
    acc = np.zeros(dim, dtype=np.float64)
    for tag in {normalise_tag(t) for t in tags}:
        if not tag:
            continue
        for index, sign in tag_probes(tag, dim):
            acc[index] += sign
    return unit(acc)


def tag_vector(tag: str, dim: int = DEFAULT_DIM) -> Vector | None:
    """The unit hash vector of one tag (``None`` for an empty tag)."""
    return hash_tags((tag,), dim)


def resolve_vector(
    explicit: Sequence[float] | None, tags: Iterable[str], dim: int = DEFAULT_DIM
) -> Vector | None:
    """An explicit vector of length ``dim`` (L2-normalised), else :func:`hash_tags`.

    An explicit vector of another length, or of zero norm, is ignored (falls back to tags);
    the catalogue rejects wrong lengths before they get here.
    """
    if explicit is not None and len(explicit) == dim:
        vec = unit(explicit)
        if vec is not None:
            return vec
    return hash_tags(tags, dim)


def vec_to_bytes(vec: npt.ArrayLike) -> bytes:
    """Pack a 1-D vector as little-endian float32 bytes (the Redis field ``vec``)."""
    arr = np.asarray(vec, dtype="<f4")
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {arr.shape}")
    return arr.tobytes()


def vec_from_bytes(data: bytes, dim: int = DEFAULT_DIM) -> Vector:
    """Unpack :func:`vec_to_bytes` output; raises ``ValueError`` unless it is ``4 * dim`` bytes.

    Returns a new, writable native ``float32`` array.
    """
    if len(data) != 4 * dim:
        raise ValueError(f"expected {4 * dim} bytes for dimension {dim}, got {len(data)}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)
