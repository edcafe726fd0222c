"""The temporal API from the store's history: timerel, lastN, temporalValues, aggregation."""

from __future__ import annotations

from tests.platform.conftest import Api

V1 = "/ngsi-ld/v1"


def _reading(value: float, minute: int) -> dict:
    return {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor",
            "temperature": {"type": "Property", "value": value, "unitCode": "CEL",
                            "observedAt": f"2026-01-01T10:{minute:02d}:00Z"}}


def test_temporal_retrieval_and_aggregation(api: Api) -> None:
    for minute in range(6):
        r = api.http.post(f"{V1}/entityOperations/upsert", params={"options": "update"},
                          json=[_reading(10.0 + minute, minute)])
        assert r.status_code in (201, 204)
    url = f"{V1}/temporal/entities/urn:ngsi-ld:Sensor:1"
    full = api.http.get(url).json()
    assert [i["value"] for i in full["temperature"]] == [10, 11, 12, 13, 14, 15]
    assert full["temperature"][0]["observedAt"] == "2026-01-01T10:00:00Z"
    assert full["temperature"][0]["unitCode"] == "CEL"
    last = api.http.get(url, params={"lastN": "2"}).json()
    assert [i["value"] for i in last["temperature"]] == [14, 15]
    between = api.http.get(url, params={"timerel": "between", "timeAt": "2026-01-01T10:01:00Z",
                                        "endTimeAt": "2026-01-01T10:03:00Z"}).json()
    assert [i["value"] for i in between["temperature"]] == [11, 12]
    before = api.http.get(url, params={"timerel": "before", "timeAt": "2026-01-01T10:01:00Z",
                                       "options": "temporalValues"}).json()
    assert before["temperature"] == {"type": "Property", "values": [[10, "2026-01-01T10:00:00Z"]]}
    agg = api.http.get(url, params={"aggrMethods": "avg,min,max,totalCount,sum", "aggrPeriodDuration": "PT3M",
                                    "timerel": "after", "timeAt": "2026-01-01T10:00:00Z"}).json()
    t = agg["temperature"]
    assert t["avg"] == [[11.0, "2026-01-01T10:00:00Z", "2026-01-01T10:03:00Z"],
                        [14.0, "2026-01-01T10:03:00Z", "2026-01-01T10:06:00Z"]]
    assert [v[0] for v in t["min"]] == [10, 13] and [v[0] for v in t["totalCount"]] == [3, 3]
    q = api.http.get(f"{V1}/temporal/entities", params={"type": "Sensor", "lastN": "1"}).json()
    assert q[0]["temperature"]["value"] == 15
    for params in ({"timerel": "between", "timeAt": "2026-01-01T10:00:00Z"}, {"timerel": "sometime"},
                   {"aggrMethods": "median"}, {"aggrMethods": "avg", "aggrPeriodDuration": "1 hour"},
                   {"lastN": "0"},
                   # numbers too large for the store or the time arithmetic (each was a 500 OverflowError)
                   {"lastN": "99999999999999999999"},
                   {"aggrMethods": "sum", "aggrPeriodDuration": "P99999999999999999999D"},
                   {"aggrMethods": "sum", "aggrPeriodDuration": "PT" + "9" * 400 + "S"}):
        r = api.http.get(url, params=params)
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), params
    assert api.http.get(f"{V1}/temporal/entities/urn:ngsi-ld:Sensor:404").status_code == 404


def test_aggregation_over_100k_points_is_exact(api: Api) -> None:
    """Hourly buckets over 100,000 points add up; its speed is `make bench`'s (temporal_aggregation)."""
    from datetime import UTC, datetime, timedelta

    from aicity.core.entity import Entity, Property

    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch = [Entity("urn:ngsi-ld:Meter:1", "Meter", {"power": Property(float(i % 97), base + timedelta(seconds=i))})
             for i in range(100_000)]
    api.store.upsert_many(batch, now=base)
    url = f"{V1}/temporal/entities/urn:ngsi-ld:Meter:1"
    params = {"aggrMethods": "avg,max,totalCount", "aggrPeriodDuration": "PT1H", "timerel": "after",
              "timeAt": "2026-01-01T00:00:00Z"}
    body = api.http.get(url, params=params).json()
    counts = [v[0] for v in body["power"]["totalCount"]]
    assert sum(counts) == 100_000 and counts[0] == 3600 and len(counts) == 28
    first = [float(i % 97) for i in range(3600)]
    assert body["power"]["max"][0][0] == max(first)
    assert abs(body["power"]["avg"][0][0] - sum(first) / 3600) < 1e-9
