from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.sorted_ids import SortedIds


@given(st.sets(st.text(max_size=6), max_size=40), st.lists(st.text(max_size=6), max_size=20))
def test_sorted_ids_answer_like_a_dictionary_of_their_rows(
    ids: set[str], probes: list[str]
) -> None:
    ordered = tuple(sorted(ids))
    index, reference = SortedIds(ordered), {o: i for i, o in enumerate(ordered)}
    assert len(index) == len(reference) and list(index) == list(reference)
    for key in [*ordered, *probes]:
        assert index.get(key) == reference.get(key)
        assert index.get(key, -1) == reference.get(key, -1)
        assert (key in index) == (key in reference)
        if key in reference:
            assert index[key] == reference[key]
        else:
            with pytest.raises(KeyError):
                index[key]
    assert dict(index) == reference


def test_a_key_that_is_not_a_string_is_not_contained() -> None:
    assert 1 not in SortedIds(("a", "b"))
