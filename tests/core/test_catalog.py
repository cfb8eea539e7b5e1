from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.catalog import NO_END, NO_START, Catalogue, CatalogueSnapshot
from app.core.catalog_records import Item, Offer
from app.core.enums import Channel
from app.core.errors import EventRejected
from app.core.events import UserEvent
from app.core.vectors import Vector, hash_tags

pytestmark = pytest.mark.unit

DIM = 8


def onehot(i: int, scale: float = 1.0) -> tuple[float, ...]:
    return tuple(scale if j == i else 0.0 for j in range(DIM))


def test_upserts_are_rebuilt_once_on_the_next_snapshot() -> None:
    cat = Catalogue(dim=DIM)
    for i in range(50):
        cat.upsert_offer(Offer(offer_id=f"o{i}", title="t", tags=(f"t{i}",)))
    assert cat.rebuilds == 0
    snap = cat.snapshot()
    assert cat.rebuilds == 1
    assert cat.snapshot() is snap
    assert cat.rebuilds == 1
    cat.upsert_offer(Offer(offer_id="o0", title="changed"))
    assert cat.snapshot().offers[cat.snapshot().offer_index["o0"]].title == "changed"
    assert cat.rebuilds == 2


def test_delete_is_a_tombstone() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(Offer(offer_id="o", title="t"))
    cat.upsert_item(Item(item_id="i"))
    assert cat.delete_offer("o") is True
    assert cat.delete_offer("o") is False
    assert cat.delete_item("i") is True
    assert cat.delete_item("missing") is False
    assert cat.snapshot().size == 0
    assert cat.item("i") is None and cat.offer("o") is None


def test_deleting_an_unknown_id_does_not_force_a_rebuild() -> None:
    cat = Catalogue(dim=DIM)
    cat.snapshot()
    cat.delete_offer("nope")
    cat.delete_item("nope")
    cat.snapshot()
    assert cat.rebuilds == 1


def test_offer_vector_prefers_explicit_then_items_then_tags() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_item(Item(item_id="a", vector=onehot(0)))
    cat.upsert_item(Item(item_id="b", vector=onehot(1, 3.0)))
    cat.upsert_offer(Offer(offer_id="explicit", title="t", vector=onehot(5, 2.0), item_ids=("a",)))
    cat.upsert_offer(Offer(offer_id="items", title="t", item_ids=("a", "b", "unknown")))
    cat.upsert_offer(Offer(offer_id="tags", title="t", item_ids=("unknown",), tags=("x", "y")))
    cat.upsert_offer(Offer(offer_id="nothing", title="t"))
    snap = cat.snapshot()
    row = snap.offer_index
    assert np.allclose(snap.matrix[row["explicit"]], onehot(5))
    half = 1 / np.sqrt(2)
    assert np.allclose(snap.matrix[row["items"]], (half, half, 0, 0, 0, 0, 0, 0))
    tagged = hash_tags(["x", "y"], DIM)
    assert tagged is not None
    assert np.array_equal(snap.matrix[row["tags"]], tagged)
    assert not snap.matrix[row["nothing"]].any()
    assert cat.offer_vector("nothing") is None
    assert cat.offer_vector("missing") is None
    assert np.allclose(cat.offer_vector("explicit"), onehot(5))  # type: ignore[arg-type]
    norms = np.linalg.norm(snap.matrix[[row["explicit"], row["items"], row["tags"]]], axis=1)
    assert np.allclose(norms, 1.0)


def test_item_changes_reach_the_offers_built_from_them() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_item(Item(item_id="a", vector=onehot(0)))
    cat.upsert_offer(Offer(offer_id="o", title="t", item_ids=("a",)))
    assert np.allclose(cat.offer_vector("o"), onehot(0))  # type: ignore[arg-type]
    cat.upsert_item(Item(item_id="a", vector=onehot(2)))
    assert np.allclose(cat.offer_vector("o"), onehot(2))  # type: ignore[arg-type]


def test_arrays_and_sentinels() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(
        Offer(offer_id="a", title="t", value=10, priority=-4, valid_from=5, channels=("sms",))
    )
    cat.upsert_offer(Offer(offer_id="b", title="t", value=5, priority=2, valid_until=9))
    snap = cat.snapshot()
    assert snap.offer_ids == ("a", "b")
    assert np.allclose(snap.value_norm, [1.0, 0.5])
    assert np.allclose(snap.priority_norm, [-1.0, 0.5])
    assert list(snap.valid_from) == [5, NO_START]
    assert list(snap.valid_until) == [NO_END, 9]
    assert snap.channel_mask[0].sum() == 1 and not snap.channel_mask[1].any()
    with pytest.raises(ValueError):
        snap.value_norm[0] = 3.0


def test_all_zero_values_and_priorities_normalise_to_zero() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(Offer(offer_id="a", title="t"))
    snap = cat.snapshot()
    assert snap.value_norm[0] == 0.0 and snap.priority_norm[0] == 0.0


def test_popularity_updates_without_a_full_rebuild() -> None:
    cat = Catalogue(dim=DIM)
    cat.set_popularity("b", 0.25)  # before the offer exists
    cat.upsert_offer(Offer(offer_id="a", title="t"))
    cat.upsert_offer(Offer(offer_id="b", title="t"))
    assert list(cat.snapshot().popularity) == [0.0, 0.25]
    cat.set_popularity("a", 0.75)
    assert list(cat.snapshot().popularity) == [0.75, 0.25]
    assert cat.rebuilds == 1
    with pytest.raises(ValueError):
        cat.set_popularity("a", float("nan"))


def test_popularities_set_at_once_reach_the_next_snapshot_without_a_rebuild() -> None:
    cat = Catalogue(dim=DIM)
    for offer_id in ("a", "b", "c"):
        cat.upsert_offer(Offer(offer_id=offer_id, title="t"))
    ids = cat.snapshot().offer_ids
    cat.set_popularities(ids, np.array([0.5, 1.0, 0.0]))
    assert cat.snapshot().popularity.tolist() == [0.5, 1.0, 0.0]
    cat.set_popularity("c", 0.25)  # one offer after the bulk update: both kept
    assert cat.snapshot().popularity.tolist() == [0.5, 1.0, 0.25]
    cat.upsert_offer(Offer(offer_id="d", title="t"))  # a rebuild keeps the values too
    assert cat.snapshot().popularity.tolist() == [0.5, 1.0, 0.25, 0.0]
    assert cat.rebuilds == 2


def test_popularities_set_at_once_survive_catalogue_changes_and_win_over_older_ones() -> None:
    cat = Catalogue(dim=DIM)
    cat.set_popularity("b", 0.1)  # one by one, before the bulk that names b
    cat.set_popularity("z", 0.9)  # an offer no bulk names
    for offer_id in ("a", "b", "c"):
        cat.upsert_offer(Offer(offer_id=offer_id, title="t"))
    cat.set_popularities(cat.snapshot().offer_ids, np.array([0.5, 1.0, 0.0]))
    cat.upsert_offer(Offer(offer_id="z", title="t"))  # a rebuild after the bulk
    assert cat.snapshot().popularity.tolist() == [0.5, 1.0, 0.0, 0.9]
    cat.delete_offer("a")  # leaves: its popularity is kept for its return
    cat.set_popularities(cat.snapshot().offer_ids, np.array([0.75, 0.25, 0.5]))
    cat.upsert_offer(Offer(offer_id="a", title="t"))
    assert cat.snapshot().popularity.tolist() == [0.5, 0.75, 0.25, 0.5]


@pytest.mark.parametrize("values", [[0.5, 1.0], [0.5, float("inf"), 0.0]])
def test_popularities_of_the_wrong_length_or_not_finite_are_refused(values: list[float]) -> None:
    cat = Catalogue(dim=DIM)
    with pytest.raises(ValueError):
        cat.set_popularities(("a", "b", "c"), np.array(values))


@pytest.mark.parametrize("vector", [(1.0, 2.0), tuple([1.0] * (DIM + 1))])
def test_vectors_of_the_wrong_dimension_are_rejected(vector: tuple[float, ...]) -> None:
    cat = Catalogue(dim=DIM)
    with pytest.raises(EventRejected) as info:
        cat.upsert_item(Item(item_id="i", vector=vector))
    assert info.value.reason_class == "SchemaViolation"
    assert "expected 8" in info.value.message
    with pytest.raises(EventRejected):
        cat.upsert_offer(Offer(offer_id="o", title="t", vector=vector))
    assert cat.n_items == 0 and cat.n_offers == 0


def test_item_lookups() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_item(Item(item_id="i", tags=(" Sci-Fi", "space", "SPACE")))
    cat.upsert_item(Item(item_id="bare"))
    assert cat.item_tags("i") == ("sci-fi", "space")
    assert cat.item_tags("missing") == ()
    assert np.array_equal(cat.item_vector("i"), hash_tags(["sci-fi", "space"], DIM))  # type: ignore[arg-type]
    assert cat.item_vector("bare") is None
    assert cat.item_vector("missing") is None


def event(**fields: object) -> UserEvent:
    return UserEvent.model_validate({"event_id": "e", "user_id": "u", "ts": 0, **fields})


def test_event_vector_resolution() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_item(Item(item_id="known", vector=onehot(1)))
    cat.upsert_item(Item(item_id="bare"))
    cat.upsert_offer(Offer(offer_id="o", title="t", item_ids=("known",)))
    tagged = hash_tags(["x"], DIM)
    known = cat.event_vector(event(type="view", item_id="known", tags=["x"]))
    assert np.allclose(known, onehot(1))  # type: ignore[arg-type]
    unknown = cat.event_vector(event(type="view", item_id="nope", tags=["x"]))
    assert np.array_equal(unknown, tagged)  # type: ignore[arg-type]
    bare = cat.event_vector(event(type="like", item_id="bare", tags=["x"]))
    assert np.array_equal(bare, tagged)  # type: ignore[arg-type]
    offer = cat.event_vector(event(type="offer_accepted", offer_id="o"))
    assert np.allclose(offer, onehot(1))  # type: ignore[arg-type]
    assert cat.event_vector(event(type="view", item_id="nope")) is None


def test_vocabulary_holds_item_and_offer_tags() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_item(Item(item_id="i", tags=("B",)))
    cat.upsert_offer(Offer(offer_id="o", title="t", tags=("a",), item_ids=("i",)))
    snap = cat.snapshot()
    assert snap.tag_names == ("a", "b")
    assert snap.offer_tags == (("a", "b"),)
    assert snap.tag_matrix.shape == (2, DIM)
    assert list(snap.offers_with_items(["i", "other"])) == [0]
    assert snap.offers_with_items(["other"]).size == 0


# --- incremental rebuilds: the same arrays as a catalogue built from scratch ----------------

_ITEM_IDS = [f"i{k}" for k in range(6)]
_OFFER_IDS = [f"o{k}" for k in range(8)]
_TAGS = ["red", "Blue", "green", "sale", "new"]


def _item(draw: st.DrawFn) -> Item:
    vector = draw(st.none() | st.sampled_from([onehot(k, s) for k in range(DIM) for s in (1, 2)]))
    return Item(
        item_id=draw(st.sampled_from(_ITEM_IDS)),
        tags=tuple(draw(st.lists(st.sampled_from(_TAGS), max_size=3))),
        vector=vector,
        repeatable=draw(st.booleans()),
        restock_days=draw(st.none() | st.just(7.0)),
    )


def _offer(draw: st.DrawFn) -> Offer:
    return Offer(
        offer_id=draw(st.sampled_from(_OFFER_IDS)),
        title=draw(st.sampled_from(["a", "b"])),
        item_ids=tuple(draw(st.lists(st.sampled_from(_ITEM_IDS), max_size=3))),
        tags=tuple(draw(st.lists(st.sampled_from(_TAGS), max_size=2))),
        vector=draw(st.none() | st.just(onehot(1, 3.0))),
        value=draw(st.sampled_from([0.0, 1.5, 9.0])),
        priority=draw(st.sampled_from([-2, 0, 3])),
        channels=tuple(draw(st.lists(st.sampled_from(list(Channel)), max_size=2))),
        valid_from=draw(st.none() | st.just(1_000)),
        valid_until=draw(st.none() | st.just(9_000)),
        repeatable=draw(st.booleans()),
    )


@st.composite
def _operations(draw: st.DrawFn) -> list[tuple[str, object]]:
    ops: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["item", "offer", "del_item", "del_offer", "snapshot"]))
        if kind == "item":
            ops.append((kind, _item(draw)))
        elif kind == "offer":
            ops.append((kind, _offer(draw)))
        elif kind == "del_item":
            ops.append((kind, draw(st.sampled_from(_ITEM_IDS))))
        elif kind == "del_offer":
            ops.append((kind, draw(st.sampled_from(_OFFER_IDS))))
        else:
            ops.append((kind, None))
    return ops


def _same_arrays(a: CatalogueSnapshot, b: CatalogueSnapshot) -> None:
    assert a.offer_ids == b.offer_ids and a.offers == b.offers
    for name in ("matrix", "value_norm", "priority_norm", "valid_from", "valid_until"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.channel_mask, b.channel_mask)
    assert a.offer_tags == b.offer_tags
    assert a.tag_names == b.tag_names and np.array_equal(a.tag_matrix, b.tag_matrix)
    assert a.repeatable == b.repeatable and a.restock_prior_ms == b.restock_prior_ms
    assert {k: v.tolist() for k, v in a.item_offers.items()} == {
        k: v.tolist() for k, v in b.item_offers.items()
    }


@settings(max_examples=300, deadline=None)
@given(_operations())
def test_a_catalogue_rebuilt_after_any_changes_equals_one_built_from_scratch(
    ops: list[tuple[str, object]],
) -> None:
    incremental = Catalogue(dim=DIM)
    for kind, arg in ops:
        if kind == "item":
            assert isinstance(arg, Item)
            incremental.upsert_item(arg)
        elif kind == "offer":
            assert isinstance(arg, Offer)
            incremental.upsert_offer(arg)
        elif kind == "del_item":
            incremental.delete_item(str(arg))
        elif kind == "del_offer":
            incremental.delete_offer(str(arg))
        else:
            incremental.snapshot()
    fresh = Catalogue(dim=DIM)
    for item_id in _ITEM_IDS:
        if (item := incremental.item(item_id)) is not None:
            fresh.upsert_item(item)
    for offer_id in _OFFER_IDS:
        if (offer := incremental.offer(offer_id)) is not None:
            fresh.upsert_offer(offer)
    _same_arrays(incremental.snapshot(), fresh.snapshot())


def test_a_rebuild_derives_only_the_changed_offers_and_those_of_a_changed_item() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_item(Item(item_id="i", vector=onehot(0)))
    for k in range(100):
        cat.upsert_offer(Offer(offer_id=f"o{k:03d}", title="t", tags=(f"t{k}",)))
    cat.upsert_offer(Offer(offer_id="with-item", title="t", item_ids=("i",)))
    first = cat.snapshot()
    derived: list[str] = []
    real = cat._offer_vector

    def counting(offer: Offer) -> Vector | None:
        derived.append(offer.offer_id)
        return real(offer)

    cat._offer_vector = counting  # type: ignore[method-assign]
    cat.upsert_offer(Offer(offer_id="o007", title="t", tags=("other",)))
    cat.snapshot()
    assert derived == ["o007"]
    derived.clear()
    cat.upsert_item(Item(item_id="i", vector=onehot(3)))
    after = cat.snapshot()
    assert derived == ["with-item"]
    assert after.matrix[after.offer_index["with-item"]].tolist() == list(onehot(3))
    assert np.array_equal(after.matrix[:7], first.matrix[:7])


def test_equal_tag_lists_are_shared_by_records_and_snapshot_rows_across_rebuilds() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(Offer(offer_id="a", title="t", tags=("Books", "sale")))
    cat.upsert_offer(Offer(offer_id="b", title="t", tags=("Books", "sale")))
    first = cat.snapshot()
    cat.upsert_offer(Offer(offer_id="c", title="t", tags=("Books", "sale")))  # after a build
    snap = cat.snapshot()
    records = [cat.offer(o) for o in ("a", "b", "c")]
    assert all(r is not None and r.tags == ("Books", "sale") for r in records)
    a, b, c = (r.tags for r in records if r is not None)
    assert a is b is c
    assert snap.offer_tags == (("books", "sale"),) * 3
    assert snap.offer_tags[0] is snap.offer_tags[1] is snap.offer_tags[2]
    assert first.offer_tags[0] is snap.offer_tags[0]  # a kept row keeps its shared list
