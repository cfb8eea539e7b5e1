"""Rotation of learned vectors onto the tag-hash space, and the blend."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.vectors import hash_tags
from app.learning.tag_space import blend_with_tags, procrustes_rotation

pytestmark = pytest.mark.unit

DIM = 16


def test_procrustes_recovers_a_rotation() -> None:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    source = rng.standard_normal((40, DIM))
    rotation = procrustes_rotation(source, source @ q)
    assert np.allclose(rotation, q, atol=1e-8)


def _items(n: int = 30) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    rng = np.random.default_rng(1)
    vectors = {f"i{k}": rng.standard_normal(DIM) for k in range(n)}
    tags = {f"i{k}": (f"tag-{k % 5}", f"kind-{k % 3}") for k in range(n)}
    return vectors, tags


def test_beta_zero_keeps_every_cosine_between_learned_vectors() -> None:
    vectors, tags = _items()
    blended = blend_with_tags(vectors, tags, DIM, beta=0.0)
    ids = sorted(vectors)
    raw = np.stack([vectors[i] / np.linalg.norm(vectors[i]) for i in ids])
    out = np.stack([blended[i] for i in ids])
    assert np.allclose(raw @ raw.T, out @ out.T, atol=1e-5)


def test_beta_one_gives_the_tag_hash_and_outputs_are_unit() -> None:
    vectors, tags = _items()
    blended = blend_with_tags(vectors, tags, DIM, beta=1.0)
    for item_id, vec in blended.items():
        expected = hash_tags(tags[item_id], DIM)
        assert expected is not None
        assert np.allclose(vec, expected, atol=1e-6)
    mid = blend_with_tags(vectors, tags, DIM, beta=0.3)
    assert all(np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5) for v in mid.values())


def test_blending_moves_warm_vectors_towards_their_tags() -> None:
    vectors, tags = _items()
    plain = blend_with_tags(vectors, tags, DIM, beta=0.0)
    mixed = blend_with_tags(vectors, tags, DIM, beta=0.3)
    for item_id in vectors:
        h = hash_tags(tags[item_id], DIM)
        assert h is not None
        assert float(mixed[item_id] @ h) > float(plain[item_id] @ h)


def test_items_without_tags_keep_their_rotated_vector_and_bad_beta_is_rejected() -> None:
    vectors, tags = _items()
    tags.pop("i0")
    out = blend_with_tags(vectors, tags, DIM, beta=0.5)
    assert set(out) == set(vectors)
    with pytest.raises(ValueError):
        blend_with_tags(vectors, tags, DIM, beta=1.5)
    assert blend_with_tags({}, {}, DIM) == {}
