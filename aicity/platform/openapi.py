"""The served OpenAPI document, made to say what the routes read: NGSI-LD request bodies and query parameters.

The routes read their bodies and parameters themselves (NGSI-LD's JSON-LD, ``q`` and ``options`` grammars are
checked by the broker, with ProblemDetails errors), so FastAPI's generated document lists none of them. This adds
them, from the NGSI-LD API (ETSI GS CIM 009), so integrators and property-based testers (schemathesis) see the API
as it is.
"""

from __future__ import annotations

from typing import Any

PROPERTY: dict[str, Any] = {
    "type": "object",
    "properties": {"type": {"type": "string", "enum": ["Property", "Relationship", "GeoProperty"]},
                   "value": {}, "object": {"type": "string"}, "observedAt": {"type": "string"},
                   "unitCode": {"type": "string"}}}
ENTITY: dict[str, Any] = {
    "type": "object", "required": ["id", "type"],
    "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "@context": {}},
    "additionalProperties": PROPERTY}
FRAGMENT: dict[str, Any] = {"type": "object", "additionalProperties": PROPERTY}
QUERY = ("type", "id", "idPattern", "q", "attrs", "options", "georel", "geometry", "coordinates", "geoproperty",
         "count")
TEMPORAL = ("timerel", "timeAt", "endTimeAt", "aggrMethods", "aggrPeriodDuration", "lastN", "attrs", "options")
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/ngsi-ld/v1/entities", "post"): ENTITY,
    ("/ngsi-ld/v1/entities/{entity_id}", "put"): ENTITY,
    ("/ngsi-ld/v1/entities/{entity_id}", "patch"): FRAGMENT,
    ("/ngsi-ld/v1/entities/{entity_id}/attrs", "post"): FRAGMENT,
    ("/ngsi-ld/v1/entities/{entity_id}/attrs", "patch"): FRAGMENT,
    ("/ngsi-ld/v1/entities/{entity_id}/attrs/{attr}", "patch"): PROPERTY,
    ("/ngsi-ld/v1/entityOperations/create", "post"): {"type": "array", "items": ENTITY},
    ("/ngsi-ld/v1/entityOperations/upsert", "post"): {"type": "array", "items": ENTITY},
    ("/ngsi-ld/v1/entityOperations/update", "post"): {"type": "array", "items": ENTITY},
    ("/ngsi-ld/v1/entityOperations/delete", "post"): {"type": "array", "items": {"type": "string"}},
    ("/ngsi-ld/v1/entityOperations/query", "post"): {
        "type": "object", "properties": {"type": {"type": "string"}, "entities": {"type": "array"},
                                         "q": {"type": "string"}, "attrs": {"type": "array"}}},
    ("/ngsi-ld/v1/subscriptions", "post"): {
        "type": "object", "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                                         "entities": {"type": "array", "items": {"type": "object"}},
                                         "watchedAttributes": {"type": "array", "items": {"type": "string"}},
                                         "q": {"type": "string"},
                                         "notification": {"type": "object"}}},
    ("/ngsi-ld/v1/subscriptions/{sid}", "patch"): {"type": "object"},
    ("/city/stop", "post"): {"type": "object", "properties": {"domain": {"type": "string"},
                                                             "reason": {"type": "string"}}},
    ("/city/resume", "post"): {"type": "object", "properties": {"domain": {"type": "string"},
                                                               "reason": {"type": "string"}}},
    ("/city/autonomy", "put"): {"type": "object", "properties": {
        "domain": {"type": "string"}, "action_type": {"type": "string"}, "level": {"type": "string"},
        "reason": {"type": "string"}}},
    ("/city/whatif", "post"): {"type": "object", "properties": {
        "responses": {"type": "object"}, "horizon_s": {}, "at_s": {}}},
    ("/city/commands", "post"): {"type": "object", "properties": {"device": {"type": "string"},
                                                                 "command": {"type": "object"}}},
}
PARAMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("/ngsi-ld/v1/entities", "get"): (*QUERY, "limit", "offset"),
    ("/ngsi-ld/v1/entities/{entity_id}", "get"): ("attrs", "options"),
    ("/ngsi-ld/v1/temporal/entities", "get"): (*QUERY, *TEMPORAL, "limit"),
    ("/ngsi-ld/v1/temporal/entities/{entity_id}", "get"): TEMPORAL,
    ("/ngsi-ld/v1/entityOperations/upsert", "post"): ("options",),
    ("/ngsi-ld/v1/subscriptions", "get"): ("limit", "offset"),
    ("/city/decisions", "get"): ("limit",),
    ("/city/stops", "get"): ("active",),
    ("/city/ledger", "get"): ("kind",),
}
INTEGER = ("limit", "offset", "lastN")


def describe(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (FastAPI's document) with the bodies and query parameters the routes read."""
    for path, ops in spec.get("paths", {}).items():
        key = path.rstrip("/") or path
        for method, op in ops.items():
            body = BODIES.get((key, method))
            if body is not None:
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            names = PARAMS.get((key, method), ())
            have = {p.get("name") for p in op.get("parameters", [])}
            op.setdefault("parameters", []).extend(
                {"name": n, "in": "query", "required": False,
                 "schema": {"type": "integer"} if n in INTEGER else {"type": "string"}}
                for n in names if n not in have)
    return spec
