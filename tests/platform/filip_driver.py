"""Drive aicity's NGSI-LD API with FiLiP, as a third-party system would (run by the FiLiP environment's Python).

``python filip_driver.py <base url> <bearer token>`` creates, queries, updates and deletes entities through
FiLiP's ``ContextBrokerLDClient`` and prints what FiLiP read back as one JSON object; the test checks it, and the
store, on aicity's side. It imports FiLiP and the standard library only (FiLiP cannot share aicity's environment).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main(url: str, token: str) -> dict[str, Any]:
    """Run every operation; what FiLiP read back, by step."""
    import requests
    from filip.clients.ngsi_ld.cb import ContextBrokerLDClient
    from filip.models.ngsi_ld.context import (
        ActionTypeLD,
        ContextLDEntity,
        ContextProperty,
        NamedContextProperty,
    )

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    cb = ContextBrokerLDClient(url=url, session=session)
    out: dict[str, Any] = {}

    def room(k: int, temperature: float, lon: float) -> ContextLDEntity:
        return ContextLDEntity(id=f"urn:ngsi-ld:Room:r{k}", type="Room",
                               temperature={"type": "Property", "value": temperature, "unitCode": "CEL"},
                               location={"type": "GeoProperty", "value": {"type": "Point",
                                                                          "coordinates": [lon, 50.94]}},
                               building={"type": "Relationship", "object": "urn:ngsi-ld:Building:b1"})

    # create: one by POST /entities, two by a batch create
    out["created"] = cb.post_entity(room(1, 18.5, 6.95))
    cb.entity_batch_operation(entities=[room(2, 22.0, 6.96), room(3, 25.5, 7.40)],
                              action_type=ActionTypeLD.CREATE)

    # read: one entity, a type query, a q query, a geo query
    one = cb.get_entity("urn:ngsi-ld:Room:r1")
    out["retrieved"] = one.model_dump(exclude_none=True)
    out["by_type"] = sorted(e.id for e in cb.get_entity_list(entity_type="Room"))
    out["warm"] = sorted(e.id for e in cb.get_entity_list(entity_type="Room", q="temperature>20"))
    out["near"] = sorted(e.id for e in cb.get_entity_list(
        entity_type="Room", georel="near;maxDistance==5000", geometry="Point", coordinates="[6.95,50.94]"))
    out["key_values"] = [e.model_dump(exclude_none=True) for e in
                         cb.get_entity_list(entity_id="urn:ngsi-ld:Room:r2", options="keyValues")]

    # update: a batch upsert (options=update, as IoT agents send), one attribute, appended attributes
    cb.entity_batch_operation(entities=[
        ContextLDEntity(id=f"urn:ngsi-ld:Room:r{k}", type="Room", temperature={"type": "Property", "value": v})
        for k, v in ((1, 19.0), (2, 23.0), (4, 30.0))], action_type=ActionTypeLD.UPSERT, options="update")
    cb.update_entity_attribute("urn:ngsi-ld:Room:r3", ContextProperty(value=26.5), attr_name="temperature")
    extra = ContextLDEntity(id="urn:ngsi-ld:Room:r3", type="Room")
    extra.add_properties([NamedContextProperty(name="humidity", value=0.41)])
    cb.append_entity_attributes(extra)
    out["updated"] = {e.id: e.model_dump(exclude_none=True) for e in cb.get_entity_list(entity_type="Room")}

    # delete: one attribute, one entity, then a batch delete
    cb.delete_attribute("urn:ngsi-ld:Room:r3", "humidity")
    cb.delete_entity_by_id("urn:ngsi-ld:Room:r1")
    out["after_delete"] = sorted(e.id for e in cb.get_entity_list(entity_type="Room"))
    cb.entity_batch_operation(entities=[ContextLDEntity(id="urn:ngsi-ld:Room:r4", type="Room")],
                              action_type=ActionTypeLD.DELETE)
    out["left"] = sorted(e.id for e in cb.get_entity_list(entity_type="Room"))
    try:
        cb.get_entity("urn:ngsi-ld:Room:r1")
        out["missing"] = None
    except requests.HTTPError as exc:
        out["missing"] = exc.response.status_code
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
