"""Subscriptions: real HTTP notifications through the durable outbox, retries, dead letter, restart."""

from __future__ import annotations

import time
from pathlib import Path

from tests.platform.conftest import Api, Receiver

V1 = "/ngsi-ld/v1"


def _sub(receiver: Receiver, **extra: object) -> dict:
    return {"type": "Subscription", "entities": [{"type": "Vehicle"}], "watchedAttributes": ["speed"],
            "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"},
                             "attributes": ["speed"], "format": "keyValues"}, **extra}


def _car(n: int, speed: float) -> dict:
    return {"id": f"urn:ngsi-ld:Vehicle:{n}", "type": "Vehicle", "speed": {"type": "Property", "value": speed},
            "brand": {"type": "Property", "value": "Volvo"}}


def test_notifications_match_q_and_carry_status(api: Api, receiver: Receiver) -> None:
    r = api.http.post(f"{V1}/subscriptions", json=_sub(receiver, q="speed>50"))
    assert r.status_code == 201
    sid = r.headers["location"].rsplit("/", 1)[-1]
    api.http.post(f"{V1}/entities", json=_car(1, 10))          # q does not match
    api.http.post(f"{V1}/entities", json=_car(2, 70))          # matches
    api.http.patch(f"{V1}/entities/urn:ngsi-ld:Vehicle:2/attrs", json={"brand": {"type": "Property",
                                                                                   "value": "Saab"}})  # not watched
    api.http.patch(f"{V1}/entities/urn:ngsi-ld:Vehicle:2/attrs", json={"speed": {"type": "Property",
                                                                                   "value": 80}})
    got = receiver.wait(2)
    assert [n["data"][0] for n in got] == [{"id": "urn:ngsi-ld:Vehicle:2", "type": "Vehicle", "speed": 70},
                                           {"id": "urn:ngsi-ld:Vehicle:2", "type": "Vehicle", "speed": 80}]
    assert got[0]["subscriptionId"] == sid and got[0]["type"] == "Notification"
    assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in receiver.headers[0]["Link"]
    time.sleep(0.2)
    assert len(receiver.got) == 2
    status = api.http.get(f"{V1}/subscriptions/{sid}").json()["notification"]
    assert status["timesSent"] == 2 and status["status"] == "ok" and status["lastSuccess"]
    assert api.http.patch(f"{V1}/subscriptions/{sid}", json={"isActive": False}).status_code == 204
    api.http.patch(f"{V1}/entities/urn:ngsi-ld:Vehicle:2/attrs", json={"speed": {"type": "Property", "value": 90}})
    time.sleep(0.3)
    assert len(receiver.got) == 2
    assert api.http.delete(f"{V1}/subscriptions/{sid}").status_code == 204
    assert api.http.get(f"{V1}/subscriptions/{sid}").status_code == 404
    assert api.http.post(f"{V1}/subscriptions", json={"type": "Subscription"}).status_code == 400


def test_throttling_and_expiry_are_honoured_and_what_cannot_mean_anything_is_refused(api: Api,
                                                                                     receiver: Receiver) -> None:
    """throttling, expiresAt and timeInterval were stored and echoed but never honoured (NaN was even written back
    as invalid JSON). Now throttling drops changes within its seconds of the last notification, a subscription past
    expiresAt notifies nothing and reads as expired, and what this broker does not do is refused."""
    r = api.http.post(f"{V1}/subscriptions", json=_sub(receiver, throttling=30))
    assert r.status_code == 201
    throttled = r.headers["location"].rsplit("/", 1)[-1]
    for speed in (10, 20, 30):
        api.http.post(f"{V1}/entityOperations/upsert", json=[_car(1, speed)])
    assert [n["data"][0]["speed"] for n in receiver.wait(1)] == [10]
    time.sleep(0.3)
    assert len(receiver.got) == 1  # 20 and 30 came within 30 s of it
    api.http.delete(f"{V1}/subscriptions/{throttled}")
    r = api.http.post(f"{V1}/subscriptions", json=_sub(receiver, expiresAt="2020-01-01T00:00:00Z"))
    expired = r.headers["location"].rsplit("/", 1)[-1]
    api.http.post(f"{V1}/entityOperations/upsert", json=[_car(1, 40)])
    time.sleep(0.3)
    assert len(receiver.got) == 1
    assert api.http.get(f"{V1}/subscriptions/{expired}").json()["status"] == "expired"
    for extra, status in (({"throttling": -5}, 400), ({"throttling": "1"}, 400), ({"expiresAt": "99999-01-01"}, 400),
                          ({"expiresAt": "2030-01-01T00:00:00"}, 400), ({"timeInterval": 0.0001}, 422),
                          ({"watchedAttributes": "speed"}, 400)):
        assert api.http.post(f"{V1}/subscriptions", json=_sub(receiver, **extra)).status_code == status, extra
    bad = _sub(receiver)
    bad["notification"]["attributes"] = "speed"
    assert api.http.post(f"{V1}/subscriptions", json=bad).status_code == 400
    nan = b'{"type":"Subscription","entities":[{"type":"Vehicle"}],"throttling":NaN,' \
          b'"notification":{"endpoint":{"uri":"http://127.0.0.1:9/n"}}}'
    r = api.http.post(f"{V1}/subscriptions", content=nan, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "NaN is not a JSON value" in r.json()["detail"]


def test_retries_then_delivers_and_dead_letters_after_the_last_attempt(api: Api, receiver: Receiver) -> None:
    receiver.fail = 2  # two 503s, then success (3 attempts allowed after the first)
    sid = api.http.post(f"{V1}/subscriptions", json=_sub(receiver)).headers["location"].rsplit("/", 1)[-1]
    api.http.post(f"{V1}/entities", json=_car(1, 10))
    assert len(receiver.wait(1)) == 1
    status = api.http.get(f"{V1}/subscriptions/{sid}").json()["notification"]
    assert status["timesFailed"] == 2 and status["timesSent"] == 1 and status["status"] == "ok"
    receiver.fail = 100  # the endpoint stays down: after the last retry the notification is dead-lettered
    api.http.patch(f"{V1}/entities/urn:ngsi-ld:Vehicle:1/attrs", json={"speed": {"type": "Property", "value": 5}})
    deadline = time.monotonic() + 5
    while api.store.dead_letter_count == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    dead = api.store.dead_letters()
    assert len(dead) == 1 and dead[0].source == f"notification:{sid}" and "503" in dead[0].reason
    assert api.http.get(f"{V1}/subscriptions/{sid}").json()["notification"]["status"] == "failed"


def test_nothing_is_lost_across_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    first = Api(tmp_path)
    sid = first.http.post(f"{V1}/subscriptions", json=_sub(receiver)).headers["location"].rsplit("/", 1)[-1]
    receiver.fail = 10_000  # the receiver is down while aicity runs
    first.platform.notifier.backoff = (60.0,) * 5
    for n in range(20):
        assert first.http.post(f"{V1}/entities", json=_car(n, n)).status_code == 201
    first.close()  # aicity stops with 20 notifications in its outbox
    receiver.fail = 0
    second = Api(tmp_path)  # ... and starts again over the same store
    try:
        got = receiver.wait(20)
        assert sorted(n["data"][0]["id"] for n in got) == sorted(f"urn:ngsi-ld:Vehicle:{n}" for n in range(20))
        assert {n["subscriptionId"] for n in got} == {sid}
        assert second.http.get(f"{V1}/entities/urn:ngsi-ld:Vehicle:7").status_code == 200
    finally:
        second.close()
