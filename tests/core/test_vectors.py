from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.vectors import (
    DEFAULT_DIM,
    hash_tags,
    resolve_vector,
    tag_probes,
    tag_vector,
    vec_from_bytes,
    vec_to_bytes,
)

pytestmark = pytest.mark.unit

TAGS = ["Sci-Fi", "space", "thriller", "kids", "\u00e9t\u00e9"]


def test_tag_hash_is_the_same_in_processes_with_different_hash_seeds() -> None:
    here = hash_tags(TAGS)
    assert here is not None
    code = (
        "import sys; from app.core.vectors import hash_tags; "
        f"sys.stdout.write(hash_tags({TAGS!r}).tobytes().hex())"
    )
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout)
    assert outputs == {here.tobytes().hex()}


def test_hash_is_a_unit_float32_vector_of_dimension_d() -> None:
    vec = hash_tags(TAGS)
    assert vec is not None
    assert vec.dtype == np.float32
    assert vec.shape == (DEFAULT_DIM,)
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-6)


def test_tags_are_normalised_and_deduplicated() -> None:
    a = hash_tags(["  Sci-Fi ", "SPACE", "space"])
    b = hash_tags(["sci-fi", "space"])
    assert a is not None and b is not None
    assert np.array_equal(a, b)


def test_no_tags_means_no_vector() -> None:
    assert hash_tags([]) is None
    assert hash_tags(["", "   "]) is None
    assert tag_vector(" ") is None


@given(st.text(min_size=1), st.integers(min_value=2, max_value=256))
def test_the_two_probes_use_distinct_indices_in_range(tag: str, dim: int) -> None:
    (i1, s1), (i2, s2) = tag_probes(tag, dim)
    assert 0 <= i1 < dim and 0 <= i2 < dim
    assert i1 != i2
    assert {s1, s2} <= {-1.0, 1.0}


def test_different_tags_are_nearly_orthogonal_on_average() -> None:
    vecs = [tag_vector(f"tag-{i}") for i in range(120)]
    assert all(v is not None for v in vecs)
    cos = [float(np.dot(a, b)) for a, b in itertools.combinations(vecs, 2)]  # type: ignore[arg-type]
    assert abs(np.mean(cos)) < 0.02
    assert np.mean(np.abs(cos)) < 0.1


def test_explicit_vector_of_dimension_d_wins_and_is_normalised() -> None:
    explicit = [0.0] * DEFAULT_DIM
    explicit[3] = 2.0
    vec = resolve_vector(explicit, ["ignored"])
    assert vec is not None
    assert vec[3] == pytest.approx(1.0)
    assert np.count_nonzero(vec) == 1


def test_wrong_length_or_zero_explicit_vector_falls_back_to_tags() -> None:
    expected = hash_tags(["a"])
    assert expected is not None
    for explicit in ([1.0, 2.0], [0.0] * DEFAULT_DIM):
        got = resolve_vector(explicit, ["a"])
        assert got is not None and np.array_equal(got, expected)
    assert resolve_vector([1.0], []) is None


def test_dimension_below_two_is_refused() -> None:
    with pytest.raises(ValueError):
        hash_tags(["a"], dim=1)


@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=16))
def test_bytes_round_trip_little_endian_float32(values: list[float]) -> None:
    vec = np.array(values, dtype=np.float32)
    data = vec_to_bytes(vec)
    assert len(data) == 4 * len(values)
    assert data == np.array(values, dtype="<f4").tobytes()
    back = vec_from_bytes(data, dim=len(values))
    assert back.dtype == np.float32
    assert np.array_equal(back, vec)
    back[0] = 1.0  # a writable copy


def test_known_wire_bytes() -> None:
    assert vec_to_bytes([1.0, -2.0]) == b"\x00\x00\x80\x3f\x00\x00\x00\xc0"


def test_unpacking_checks_the_length() -> None:
    with pytest.raises(ValueError):
        vec_from_bytes(b"\x00" * 12, dim=4)
    with pytest.raises(ValueError):
        vec_to_bytes(np.zeros((2, 2)))
