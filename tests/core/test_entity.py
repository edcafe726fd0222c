from datetime import UTC, datetime

import pytest

from aicity.core.entity import MAX_ID_BYTES, MAX_NAME, Entity, GeoProperty, Property, Relationship, urn
from aicity.core.errors import EntityValidationError

T = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def flow(**attrs):
    return Entity(urn("TrafficFlowObserved", "a1"), "TrafficFlowObserved", attrs)


def test_text_beyond_ascii_is_fine_and_a_surrogate_pair_is_one_character():
    e = flow(name=Property("Köln Hbf \U0001F691", T), tags=Property({"zoné": ["ü"]}))
    assert e.get("name") == "Köln Hbf \U0001F691"
    assert Entity(urn("TrafficFlowObserved", "straße-1"), "TrafficFlowObserved").local_id == "straße-1"


def test_ids_and_names_are_bounded_so_every_store_can_index_them():
    """PostgreSQL refuses an index entry over 2,704 bytes: a 3,000-character id made every write of the store fail
    and the loop went blind. Ids are bounded in UTF-8 bytes, types and attribute names in characters."""
    assert Entity(urn("T", "x" * (MAX_ID_BYTES - len(urn("T", "")))), "T").id.encode() == urn("T", "").encode() + (
        b"x" * (MAX_ID_BYTES - len(urn("T", ""))))
    for build, attribute in ((lambda: Entity(urn("T", "x" * MAX_ID_BYTES), "T"), "id"),
                             (lambda: Entity(urn("T", "é" * (MAX_ID_BYTES // 2)), "T"), "id"),
                             (lambda: Entity(urn("T" * (MAX_NAME + 1), "x"), "T" * (MAX_NAME + 1)), "type"),
                             (lambda: flow(**{"a" * (MAX_NAME + 1): Property(1)}), "a" * 80),
                             (lambda: flow(ref=Relationship(urn("T", "x" * MAX_ID_BYTES))), "ref")):
        with pytest.raises(EntityValidationError) as err:
            build()
        assert err.value.attribute == attribute
    assert flow(**{"a" * MAX_NAME: Property(1)}).get("a" * MAX_NAME) == 1


def test_valid_entity_round_trips_through_ngsi():
    e = flow(intensity=Property(12, T, "E50"), refRoadSegment=Relationship(urn("RoadSegment", "r1")),
             location=GeoProperty({"type": "Point", "coordinates": [6.9, 50.9]}))
    data = e.to_ngsi()
    assert data["intensity"] == {"type": "Property", "value": 12, "observedAt": T.isoformat(), "unitCode": "E50"}
    assert data["refRoadSegment"]["object"] == "urn:ngsi-ld:RoadSegment:r1"
    assert Entity.from_ngsi(data) == e
    assert e.get("intensity") == 12 and e.get("refRoadSegment") == "urn:ngsi-ld:RoadSegment:r1"
    assert e.local_id == "a1"


@pytest.mark.parametrize(("build", "attribute", "words"), [
    (lambda: Entity("lane-1", "TrafficFlowObserved"), "id", "URN"),
    (lambda: Entity(urn("Alert", "x"), "TrafficFlowObserved"), "type", "does not match"),
    (lambda: flow(intensity=Property(float("nan"), T)), "intensity", "finite"),
    (lambda: flow(intensity=Property(object(), T)), "intensity", "not JSON"),
    (lambda: flow(refRoad=Relationship("road-7")), "refRoad", "not a URN"),
    (lambda: flow(location=GeoProperty({"type": "Circle", "coordinates": [1, 2]})), "location", "GeoJSON type"),
    (lambda: flow(location=GeoProperty({"type": "Point", "coordinates": [1]})), "location", "Point"),
    (lambda: flow(intensity=Property(1, datetime(2024, 1, 1))), "intensity", "timezone"),
    (lambda: flow(id=Property(1)), "id", "reserved"),
    # text no store or response could write: a JSON escape such as \ud800 parses to a lone surrogate
    (lambda: Entity(urn("TrafficFlowObserved", "a\x00"), "TrafficFlowObserved"), "id", "control characters"),
    (lambda: Entity(urn("TrafficFlowObserved", "a\ud800"), "TrafficFlowObserved"), "id", "lone surrogates"),
    (lambda: flow(name=Property("caf\udce9")), "name", "lone surrogate"),
    (lambda: flow(tags=Property({"ok": ["x", {"\udc00": 1}]})), "tags", "an object key holds a lone surrogate"),
    (lambda: flow(intensity=Property(1, T, "E5\ud800")), "intensity", "unitCode holds a lone surrogate"),
    (lambda: flow(location=GeoProperty({"type": "Point", "coordinates": [1, 2], "name": "\udfff"})), "location",
     "lone surrogate"),
])
def test_invalid_entities_name_entity_attribute_and_problem(build, attribute, words):
    with pytest.raises(EntityValidationError) as err:
        build()
    assert err.value.attribute == attribute
    assert words in err.value.problem
    assert attribute in str(err.value)


@pytest.mark.parametrize(("data", "attribute"), [
    ({"type": "X"}, "id"),
    ({"id": "urn:ngsi-ld:X:1"}, "type"),
    ({"id": "urn:ngsi-ld:X:1", "type": "X", "speed": 3}, "speed"),
    ({"id": "urn:ngsi-ld:X:1", "type": "X", "speed": {"type": "Property"}}, "speed"),
    ({"id": "urn:ngsi-ld:X:1", "type": "X", "speed": {"type": "Thing", "value": 1}}, "speed"),
    ({"id": "urn:ngsi-ld:X:1", "type": "X", "speed": {"type": "Property", "value": 1, "observedAt": "noon"}},
     "speed"),
])
def test_from_ngsi_rejects_malformed_json(data, attribute):
    with pytest.raises(EntityValidationError) as err:
        Entity.from_ngsi(data)
    assert err.value.attribute == attribute
