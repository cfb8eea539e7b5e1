"""Putting collaborative vectors and tag-hash vectors into one space.

The catalogue gives an item without an explicit ``vector`` the signed hash of its tags
(:func:`~app.core.vectors.hash_tags`). Collaborative vectors from the factorisation live in an
arbitrary rotation of R^D, so a cold item's tag hash would be meaningless next to them. Two steps
make the spaces compatible, without any change to the engine:

1. **Rotation** (orthogonal Procrustes): the rotation ``R`` minimising
   ``||V R - H||_F`` over the warm items (``V``: learned unit vectors, ``H``: their tag hashes)
   turns the learned space so that it agrees with the tag-hash axes as far as a rotation can.
   Rotations keep every cosine between learned vectors.
2. **Blend**: each published vector is ``unit((1 - beta) * V R + beta * H)``. A profile built
   from such vectors carries a ``beta``-weighted tag-hash component, so the raw tag hash of a
   cold item (the catalogue's fallback) scores by tag affinity, while warm items still rank
   mostly by the collaborative part. ``beta = 0`` publishes the rotated vectors only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from app.core.vectors import hash_tags

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

DEFAULT_TAG_BLEND = 0.2
"""Default ``beta`` of :func:`blend_with_tags` (chosen on a validation period, see docs)."""


def procrustes_rotation(source: npt.ArrayLike, target: npt.ArrayLike) -> F64:
    """The orthogonal D x D matrix ``R`` minimising ``||source @ R - target||_F``."""
    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    u, _, vt = np.linalg.svd(a.T @ b)
    return np.asarray(u @ vt, dtype=np.float64)


def blend_with_tags(
    vectors: Mapping[str, npt.ArrayLike],
    tags: Mapping[str, Sequence[str]],
    dim: int,
    beta: float = DEFAULT_TAG_BLEND,
) -> dict[str, F32]:
    """Rotate learned vectors onto the tag-hash space and blend in the tag hash (module docs).

    ``vectors``: item id -> learned vector of length ``dim``. ``tags``: item id -> tags (items
    missing here, or without tags, keep their rotated vector). ``beta`` in [0, 1] (default
    :data:`DEFAULT_TAG_BLEND`). Returns item id -> unit float32 vector, same keys as
    ``vectors`` (an item whose blend is zero keeps its rotated vector).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    ids = list(vectors)
    if not ids:
        return {}
    learned = np.stack([np.asarray(vectors[i], dtype=np.float64) for i in ids])
    if learned.shape[1] != dim:
        raise ValueError(f"vectors have dimension {learned.shape[1]}, expected {dim}")
    norms = np.linalg.norm(learned, axis=1, keepdims=True)
    learned = np.divide(learned, norms, out=np.zeros_like(learned), where=norms > 0)
    hashed = np.zeros_like(learned)
    tagged = np.zeros(len(ids), dtype=np.bool_)
    for row, item_id in enumerate(ids):
        h = hash_tags(tags.get(item_id, ()), dim)
        if h is not None:
            hashed[row] = h
            tagged[row] = True
    rotated = learned
    if tagged.sum() >= 2:
        rotated = learned @ procrustes_rotation(learned[tagged], hashed[tagged])
    mixed = (1.0 - beta) * rotated + beta * hashed
    mixed_norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    usable = mixed_norms[:, 0] > 1e-9
    out = np.where(usable[:, None], mixed / np.where(usable, mixed_norms[:, 0], 1.0)[:, None], 0)
    out[~usable] = rotated[~usable]
    return {item_id: out[row].astype(np.float32) for row, item_id in enumerate(ids)}
