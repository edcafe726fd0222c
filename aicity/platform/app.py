"""The HTTP API: NGSI-LD (``/ngsi-ld/v1``), the live city (``/city``) and the dashboard (``/``)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from aicity.platform.auth import Principal
from aicity.platform.broker import Broker, Query, paginate
from aicity.platform.errors import TOO_DEEP, NgsiError, bad, not_found, parse_body
from aicity.platform.jsonld import CORE_URL, SHIPPED, Context, link_header, parse_link, process, shipped
from aicity.platform.ngsi import Codec
from aicity.platform.service import Platform
from aicity.platform.temporal import MAX_LAST_N, check_aggr, temporal_entity, window
from aicity.platform.tenants import Tenants

V1 = "/ngsi-ld/v1"
JSON = "application/json"
LD = "application/ld+json"
GEO = "application/geo+json"
FORMATS = ("normalized", "concise", "keyValues")


def _dumps(body: Any) -> bytes:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (from a refused request, echoed in the problem): escaped instead
        return json.dumps(body, separators=(",", ":")).encode()


def problem(exc: NgsiError, instance: str | None = None) -> Response:
    """A ProblemDetails response."""
    return Response(_dumps(exc.problem(instance)), status_code=exc.status, media_type=JSON)


class Call:
    """One request's tenant, caller, contexts and options."""

    def __init__(self, platform: Platform, request: Request, body: Any, action: str, *, write: bool) -> None:
        self.request = request
        self.body = body
        self.params = request.query_params
        h = request.headers
        self.who: Principal = platform.auth.principal(h.get("authorization"), h.get("x-auth-token"))
        platform.auth.check(self.who, action)
        self.tenant = Tenants.name(h.get("ngsild-tenant"), h.get("fiware-service"))
        self.broker: Broker = platform.broker(self.tenant, create=write)
        self.ctx = _request_context(request, body)
        self.accept = _accept(h.get("accept"))
        self.options = {o.strip() for o in (self.params.get("options") or "").split(",") if o.strip()}
        fmt = self.params.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise bad(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        self.fmt = fmt or ("keyValues" if "keyValues" in self.options or "simplified" in self.options else
                           "concise" if "concise" in self.options else "normalized")
        self.sys_attrs = "sysAttrs" in self.options

    @functools.cached_property
    def codec(self) -> Codec:
        """The codec of this request's context (one per request: it remembers the terms it has seen)."""
        return self.broker.codec(self.ctx)

    def codec_for(self, item: Any) -> Codec:
        """The codec of one batch item (its own @context under application/ld+json)."""
        if isinstance(item, Mapping) and "@context" in item:
            return self.broker.codec(process(item["@context"]))
        return self.codec

    def check_write(self, entity_id: Any) -> None:
        """A device writes only its own entities."""
        if isinstance(entity_id, str) and not self.who.may_write(entity_id):
            raise NgsiError("Forbidden", f"device {self.who.person} may not write {entity_id}")

    def respond(self, body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON or JSON-LD response compacted with this request's context."""
        out = dict(headers or {})
        if self.accept == LD:
            if isinstance(body, list):
                for item in body:
                    if isinstance(item, dict):
                        item["@context"] = self.ctx.body()
            elif isinstance(body, dict):
                body["@context"] = self.ctx.body()
        else:
            out["Link"] = link_header(self.ctx)
        return Response(_dumps(body), status_code=status, media_type=self.accept if self.accept != GEO else GEO,
                        headers=out)

    def render(self, e: Any, attrs: set[str] | None = None) -> dict[str, Any]:
        """One entity in the requested format."""
        store = self.broker.store
        times = (store.created_at(e.id), store.modified_at(e.id)) if self.sys_attrs else None
        return self.codec.render(e, fmt=self.fmt, attrs=attrs, sys_times=times)


def _request_context(request: Request, body: Any) -> Context:
    ctype = (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()
    link = parse_link(request.headers.get("link"))
    if request.method in ("POST", "PATCH", "PUT") and body is not None:
        if ctype == LD:
            items = body if isinstance(body, list) else [body]
            if isinstance(body, Mapping) and "@context" not in body:
                raise bad("application/ld+json needs an @context in the body")
            if isinstance(body, list) and any(isinstance(i, Mapping) and "@context" not in i for i in items):
                raise bad("application/ld+json needs an @context in every entity")
            if isinstance(body, Mapping):
                return process(body["@context"])
            return process(link)
        if ctype in (JSON, "application/merge-patch+json"):
            items = body if isinstance(body, list) else [body]
            if any(isinstance(i, Mapping) and "@context" in i for i in items):
                raise bad("an @context in the body needs Content-Type: application/ld+json (or send it in a "
                          "Link header with application/json)")
            return process(link)
        raise NgsiError("UnsupportedMediaType", f"Content-Type {ctype!r} is not supported: use {JSON} or {LD}",
                        status=415)
    return process(link)


def _accept(header: str | None) -> str:
    if not header:
        return JSON
    kinds = [p.split(";")[0].strip().lower() for p in header.split(",")]
    for k in kinds:
        if k in (JSON, LD, GEO):
            return k
        if k in ("*/*", "application/*"):
            return JSON
    raise NgsiError("NotAcceptable", f"Accept {header!r}: this API answers {JSON}, {LD} or {GEO}", status=406)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    ctype = (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()
    if ctype not in (JSON, LD, "application/merge-patch+json"):
        raise NgsiError("UnsupportedMediaType", f"Content-Type {ctype!r} is not supported: use {JSON} or {LD}",
                        status=415)
    return parse_body(raw)


def _int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise bad(f"{name} {text!r} is not a whole number") from None


MAX_BODY_BYTES = 64 * 1024 * 1024
"""The largest request body read (a batch of 100,000 meter readings is about 15 MB); a larger one is refused (413)
before it is held in memory."""


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is refused, by its Content-Length before any of it is
    read, else (chunked) as soon as the bytes read pass the limit."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on, its body counted."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await Response(_dumps(self._error(int(length)).problem(scope.get("path"))), status_code=413,
                           media_type=JSON)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b"")) if message.get("type") == "http.request" else 0
            if seen > self.max_bytes:
                raise self._error(seen)
            return message

        await self.app(scope, counted, send)

    def _error(self, size: int) -> NgsiError:
        return NgsiError("PayloadTooLarge", f"the request body ({size:,} bytes at least) is larger than the "
                         f"{self.max_bytes:,} bytes this server reads")


def create_app(platform: Platform, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The FastAPI app of a platform (request bodies of at most ``max_body_bytes``)."""
    app = FastAPI(title="aicity platform", version="1", docs_url="/docs", redoc_url=None)
    app.state.platform = platform
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    def openapi() -> dict[str, Any]:  # FastAPI's document, with the bodies and parameters the routes read
        from aicity.platform.openapi import describe

        if app.openapi_schema is None:
            app.openapi_schema = describe(get_openapi(title=app.title, version=app.version, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(NgsiError)
    async def _ngsi(request: Request, exc: NgsiError) -> Response:
        return problem(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "ResourceNotFound", 405: "OperationNotSupported"}.get(exc.status_code, "BadRequestData")
        return problem(NgsiError(kind, str(exc.detail), status=exc.status_code), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return problem(bad(f"invalid request: {exc.errors()}"), request.url.path)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RecursionError):  # a request nested too deeply for a recursive step after parsing
            return problem(bad(f"the request is {TOO_DEEP}"), request.url.path)
        return problem(NgsiError("InternalError", f"{type(exc).__name__}: {exc}"), request.url.path)

    def call(action: str, *, write: bool = False) -> Callable[[Request], Any]:
        async def make(request: Request) -> Call:
            body = await _body(request) if request.method in ("POST", "PATCH", "PUT") else None
            return Call(platform, request, body, action, write=write)
        return make

    _entities(app, call)
    _writes(app, call)
    _batches(app, call)
    _subscriptions(app, call)
    _temporal(app, call)
    _contexts(app)
    from aicity.platform.cityapi import add_city_routes

    add_city_routes(app, platform)
    static = _static_dir()
    app.mount("/dashboard", StaticFiles(directory=static, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    async def _root() -> Response:
        return RedirectResponse("/dashboard/")
    return app


def _static_dir() -> str:
    from importlib import resources

    return str(resources.files("aicity.platform").joinpath("static"))


Maker = Callable[..., Callable[[Request], Any]]


def _entities(app: FastAPI, call: Maker) -> None:
    @app.post(V1 + "/entities")
    @app.post(V1 + "/entities/")
    async def create_entity(request: Request) -> Response:
        c: Call = await call("ngsi.write", write=True)(request)
        if isinstance(c.body, Mapping):
            c.check_write(c.body.get("id"))
        ident = c.broker.create(c.codec, c.body)
        return Response(status_code=201, headers={"Location": f"{V1}/entities/{ident}"})

    @app.get(V1 + "/entities")
    @app.get(V1 + "/entities/")
    async def query_entities(request: Request) -> Response:
        c: Call = await call("ngsi.read")(request)
        p = c.params
        q = Query(p.get("type"), p.get("id"), p.get("idPattern"), p.get("q"), p.get("attrs") or p.get("pick"),
                  p.get("georel"), p.get("geometry"), p.get("coordinates"), p.get("geoproperty"))
        found = c.broker.query(c.codec, q, need_filter=False)
        return _list(c, found, q.attrs)

    @app.get(V1 + "/entities/{entity_id}")
    async def retrieve_entity(request: Request, entity_id: str) -> Response:
        c: Call = await call("ngsi.read")(request)
        e = c.broker.retrieve(entity_id)
        attrs = _attr_set(c, c.params.get("attrs") or c.params.get("pick"))
        if c.accept == GEO:
            return c.respond(_feature(c, e, attrs))
        return c.respond(c.render(e, attrs))




    @app.post(V1 + "/entities/{entity_id}/attrs")
    @app.post(V1 + "/entities/{entity_id}/attrs/")
    async def append_attrs(request: Request, entity_id: str) -> Response:
        c: Call = await call("ngsi.write", write=True)(request)
        c.check_write(entity_id)
        return _partial(c, c.broker.append_attrs(c.codec, entity_id, c.body,
                                                 overwrite="noOverwrite" not in c.options), "noOverwrite")

    @app.patch(V1 + "/entities/{entity_id}/attrs")
    @app.patch(V1 + "/entities/{entity_id}/attrs/")
    async def update_attrs(request: Request, entity_id: str) -> Response:
        c: Call = await call("ngsi.write", write=True)(request)
        c.check_write(entity_id)
        return _partial(c, c.broker.update_attrs(c.codec, entity_id, c.body), "attribute not found")



    @app.get(V1 + "/types")
    async def types(request: Request) -> Response:
        c: Call = await call("ngsi.read")(request)
        found = c.broker.types()
        if "details" in (c.params.get("details") or "") or c.params.get("details") == "true":
            return c.respond([{"id": c.codec.term(t), "type": "EntityType", "typeName": c.codec.term(t),
                               "attributeNames": sorted(c.codec.term(a) for a in attrs)}
                              for t, attrs in sorted(found.items())])
        return c.respond({"id": "urn:ngsi-ld:EntityTypeList:aicity", "type": "EntityTypeList",
                          "typeList": sorted(c.codec.term(t) for t in found)})

    @app.get(V1 + "/types/{type_name}")
    async def type_info(request: Request, type_name: str) -> Response:
        c: Call = await call("ngsi.read")(request)
        stored = c.codec.attr_name(type_name, create=False)
        found = c.broker.types()
        if stored not in found:
            raise not_found(f"no entity of type {type_name}")
        count = sum(1 for e in c.broker.store.entities() if e.type == stored)
        return c.respond({"id": c.codec.term(stored), "type": "EntityTypeInfo", "typeName": c.codec.term(stored),
                          "entityCount": count,
                          "attributeDetails": [{"id": c.codec.term(a), "type": "Attribute",
                                                "attributeName": c.codec.term(a)} for a in sorted(found[stored])]})

    @app.get(V1 + "/attributes")
    async def attributes(request: Request) -> Response:
        c: Call = await call("ngsi.read")(request)
        found = c.broker.attributes()
        if c.params.get("details") == "true":
            return c.respond([_attr_info(c, a, *v) for a, v in sorted(found.items())])
        return c.respond({"id": "urn:ngsi-ld:AttributeList:aicity", "type": "AttributeList",
                          "attributeList": sorted(c.codec.term(a) for a in found)})

    @app.get(V1 + "/attributes/{attr}")
    async def attribute_info(request: Request, attr: str) -> Response:
        c: Call = await call("ngsi.read")(request)
        stored = c.codec.attr_name(attr, create=False)
        found = c.broker.attributes()
        if stored is None or stored not in found:
            raise not_found(f"no attribute {attr}")
        return c.respond(_attr_info(c, stored, *found[stored]))


def _attr_info(c: Call, name: str, types: set[str], kinds: set[str], count: int) -> dict[str, Any]:
    """An NGSI-LD Attribute description."""
    return {"id": c.codec.term(name), "type": "Attribute", "attributeName": c.codec.term(name),
            "attributeCount": count, "attributeTypes": sorted(kinds),
            "typeNames": sorted(c.codec.term(t) for t in types)}


def _partial(c: Call, not_updated: list[str], reason: str) -> Response:
    """204, or 207 naming the attributes not updated."""
    if not_updated:
        return c.respond({"notUpdated": [{"attributeName": n, "reason": reason} for n in not_updated]}, 207)
    return Response(status_code=204)


Write = Callable[[Call, str, str | None], Any]
WRITES: tuple[tuple[str, str, Write], ...] = (
    ("PUT", "/entities/{entity_id}", lambda c, i, _: c.broker.replace(c.codec, i, c.body)),
    ("PATCH", "/entities/{entity_id}", lambda c, i, _: c.broker.merge(c.codec, i, c.body)),
    ("DELETE", "/entities/{entity_id}", lambda c, i, _: c.broker.delete(i)),
    ("PATCH", "/entities/{entity_id}/attrs/{attr}", lambda c, i, a: c.broker.update_attr(c.codec, i, str(a), c.body)),
    ("DELETE", "/entities/{entity_id}/attrs/{attr}", lambda c, i, a: c.broker.delete_attr(c.codec, i, str(a))),
)
"""Entity writes that answer 204: method, path, operation."""


def _writes(app: FastAPI, call: Maker) -> None:
    for method, path, op in WRITES:
        def add(op: Write = op) -> Callable[..., Any]:
            async def write(request: Request, entity_id: str, attr: str | None = None) -> Response:
                c: Call = await call("ngsi.write", write=True)(request)
                c.check_write(entity_id)
                op(c, entity_id, attr)
                return Response(status_code=204)
            return write
        app.add_api_route(V1 + path, add(), methods=[method], name=f"{method.lower()} {path}")


def _attr_set(c: Call, text: str | None) -> set[str] | None:
    if not text:
        return None
    return {n for t in text.split(",") if t.strip() and (n := c.codec.attr_name(t.strip(), create=False))}


def _feature(c: Call, e: Any, attrs: set[str] | None) -> dict[str, Any]:
    geo_name = c.codec.attr_name(c.params.get("geometryProperty") or "location", create=False)
    geo = e.attrs.get(geo_name)
    props = c.codec.render(e, fmt=c.fmt, attrs=attrs)
    ident = props.pop("id")
    return {"id": ident, "type": "Feature", "geometry": dict(geo.value) if geo is not None and
            hasattr(geo, "value") and isinstance(geo.value, Mapping) else None, "properties": props}


def _list(c: Call, found: list[Any], attrs_text: str | None) -> Response:
    limit, offset = _int(c.params, "limit"), _int(c.params, "offset")
    count = c.params.get("count") == "true"
    if limit == 0 and not count:
        raise bad("limit=0 needs count=true")
    page = paginate(found, limit, offset) if limit != 0 else []
    attrs = _attr_set(c, attrs_text)
    headers = {"NGSILD-Results-Count": str(len(found))} if count else {}
    if c.accept == GEO:
        return c.respond({"type": "FeatureCollection", "features": [_feature(c, e, attrs) for e in page]},
                         headers=headers)
    return c.respond([c.render(e, attrs) for e in page], headers=headers)


def _batches(app: FastAPI, call: Maker) -> None:
    for op in ("create", "upsert", "update", "delete"):
        def route(op: str = op) -> None:
            @app.post(V1 + f"/entityOperations/{op}", name=f"batch_{op}")
            @app.post(V1 + f"/entityOperations/{op}/", name=f"batch_{op}_slash")
            async def batch(request: Request) -> Response:
                c: Call = await call("ngsi.write", write=True)(request)
                if isinstance(c.body, list):
                    for item in c.body:
                        c.check_write(item if isinstance(item, str) else
                                      item.get("id") if isinstance(item, Mapping) else None)
                # off the event loop: SQLite releases the GIL while it writes, so one request's commit overlaps
                # the next one's parsing (the store's lock still runs the writes one at a time)
                ok, created, errors = await asyncio.to_thread(_run_batch, c, op)
                if errors:
                    return c.respond({"success": ok, "errors": errors}, 207)
                if op == "create" or (op == "upsert" and created):
                    return c.respond(created, 201)
                return Response(status_code=204)
        route()

    @app.post(V1 + "/entityOperations/query")
    async def batch_query(request: Request) -> Response:
        c: Call = await call("ngsi.read")(request)
        body = c.body if isinstance(c.body, Mapping) else {}
        if body.get("type") != "Query":
            raise bad("entityOperations/query needs a Query object (\"type\": \"Query\")")
        ent = _selector(body.get("entities"))
        geo = body.get("geoQ") or {}
        if not isinstance(geo, Mapping) or not all(isinstance(geo.get(k), str | None) for k in (
                "georel", "geometry", "geoproperty")):
            raise bad("geoQ must be an object of georel, geometry, coordinates (and geoproperty)")
        attrs = body.get("attrs")
        if attrs is not None and (not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs)):
            raise bad("attrs must be an array of attribute names")
        if not isinstance(body.get("q"), str | None):
            raise bad("q must be a string")
        q = Query(ent.get("type"), ent.get("id"), ent.get("idPattern"), body.get("q"),
                  ",".join(attrs or []) or None, geo.get("georel"), geo.get("geometry"),
                  json.dumps(geo["coordinates"]) if "coordinates" in geo else None, geo.get("geoproperty"))
        return _list(c, c.broker.query(c.codec, q, need_filter=False), q.attrs)


def _selector(entities: Any) -> dict[str, str]:
    """A Query's ``entities`` as one selector: several are taken together only when each names just a type."""
    if entities is None:
        return {}
    if not isinstance(entities, list) or not entities or not all(isinstance(e, Mapping) for e in entities):
        raise bad("entities must be a non-empty array of selectors ({\"type\": ..., \"id\" or \"idPattern\": ...})")
    for e in entities:
        for key, value in e.items():
            if key not in ("type", "id", "idPattern") or not isinstance(value, str):
                raise bad(f"entities: {key!r} must be one of type, id, idPattern, with a string value")
    if len(entities) == 1:
        return dict(entities[0])
    if all(set(e) == {"type"} for e in entities):
        return {"type": ",".join(e["type"] for e in entities)}
    raise NgsiError("OperationNotSupported", "several entity selectors with an id or idPattern are not supported by "
                    "this broker: send one selector, or several naming only types")


def _run_batch(c: Call, op: str) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Run a batch item by item (each may carry its own @context): (ids done, ids created, errors)."""
    body = c.body
    if not isinstance(body, list):
        raise bad(f"entityOperations/{op} needs a JSON array")
    if not body:
        raise bad(f"entityOperations/{op} got an empty array")
    if op == "delete":
        done, failed = c.broker.batch(op, c.codec, body)
        return done, [], failed
    if op == "upsert":  # the IoT agents' path: validated item by item, stored in one transaction
        return c.broker.upsert_batch([(c.codec_for(item), item) for item in body], update_only="update" in c.options)
    ok: list[str] = []
    created: list[str] = []
    errors: list[dict[str, Any]] = []
    for item in body:
        ident = item.get("id") if isinstance(item, Mapping) else None
        try:
            existed = isinstance(ident, str) and c.broker.store.get(ident) is not None
            one_ok, one_err = c.broker.batch(op, c.codec_for(item), [item], update_only="update" in c.options,
                                             no_overwrite="noOverwrite" in c.options)
        except NgsiError as exc:
            one_ok, one_err, existed = [], [{"entityId": ident, "error": exc.problem()}], True
        ok += one_ok
        created += [i for i in one_ok if not existed]
        errors += one_err
    return ok, created, errors


def _subscriptions(app: FastAPI, call: Maker) -> None:
    @app.post(V1 + "/subscriptions")
    @app.post(V1 + "/subscriptions/")
    async def create_sub(request: Request) -> Response:
        c: Call = await call("subscriptions.write", write=True)(request)
        ctx_value = c.body.get("@context") if isinstance(c.body, Mapping) and "@context" in c.body else \
            (c.ctx.urls[0] if c.ctx.urls else None)
        sid = c.broker.subs.create(c.body, ctx_value)
        return Response(status_code=201, headers={"Location": f"{V1}/subscriptions/{sid}"})

    @app.get(V1 + "/subscriptions")
    @app.get(V1 + "/subscriptions/")
    async def list_subs(request: Request) -> Response:
        c: Call = await call("ngsi.read")(request)
        subs = [_public_sub(d) for d in c.broker.subs.all()]
        return c.respond(paginate(subs, _int(c.params, "limit"), _int(c.params, "offset")))

    @app.get(V1 + "/subscriptions/{sid}")
    async def get_sub(request: Request, sid: str) -> Response:
        c: Call = await call("ngsi.read")(request)
        return c.respond(_public_sub(c.broker.subs.get(sid)))

    @app.patch(V1 + "/subscriptions/{sid}")
    async def patch_sub(request: Request, sid: str) -> Response:
        c: Call = await call("subscriptions.write", write=True)(request)
        c.broker.subs.update(sid, c.body)
        return Response(status_code=204)

    @app.delete(V1 + "/subscriptions/{sid}")
    async def delete_sub(request: Request, sid: str) -> Response:
        c: Call = await call("subscriptions.write", write=True)(request)
        c.broker.subs.delete(sid)
        return Response(status_code=204)


def _public_sub(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "@context"}


def _temporal(app: FastAPI, call: Maker) -> None:
    def opts(c: Call) -> dict[str, Any]:
        p = c.params
        start, end = window(p.get("timerel"), p.get("timeAt"), p.get("endTimeAt"))
        aggr, period = check_aggr(p.get("aggrMethods"), p.get("aggrPeriodDuration"))
        if aggr is None and "aggregatedValues" in c.options:
            raise bad("options=aggregatedValues needs aggrMethods")
        last = _int(p, "lastN")
        if last is not None and not 0 < last <= MAX_LAST_N:
            raise bad(f"lastN must be from 1 to {MAX_LAST_N:,}, got {last}")
        fmt = "temporalValues" if "temporalValues" in c.options or p.get("format") == "temporalValues" \
            else "normalized"
        return {"start": start, "end": end, "last": last, "fmt": fmt, "aggr": aggr, "period_s": period}

    @app.get(V1 + "/temporal/entities/{entity_id}")
    async def temporal_one(request: Request, entity_id: str) -> Response:
        c: Call = await call("ngsi.read")(request)
        o = opts(c)
        current = c.broker.store.get(entity_id)
        if current is None and not c.broker.store.history_attrs(entity_id):
            raise not_found(f"entity {entity_id} not found")
        etype = current.type if current is not None else ""
        return c.respond(temporal_entity(c.broker.store, c.codec, entity_id, etype,
                                         attrs=_attr_set(c, c.params.get("attrs")), **o))

    @app.get(V1 + "/temporal/entities")
    @app.get(V1 + "/temporal/entities/")
    async def temporal_query(request: Request) -> Response:
        c: Call = await call("ngsi.read")(request)
        o = opts(c)
        p = c.params
        if not (p.get("type") or p.get("id") or p.get("idPattern") or p.get("attrs") or p.get("q")):
            raise bad("a temporal query needs type, id, idPattern, attrs or q")
        if p.get("timerel") is None and o["last"] is None:
            pass
        q = Query(p.get("type"), p.get("id"), p.get("idPattern"), p.get("q"), p.get("attrs"),
                  p.get("georel"), p.get("geometry"), p.get("coordinates"), p.get("geoproperty"))
        found = c.broker.query(c.codec, q, need_filter=False)
        page = paginate(found, _int(p, "limit"), _int(p, "offset"))
        attrs = _attr_set(c, p.get("attrs"))
        return c.respond([temporal_entity(c.broker.store, c.codec, e.id, e.type, attrs=attrs, **o) for e in page])


def _contexts(app: FastAPI) -> None:
    @app.get(V1 + "/contexts/{name}")
    async def context_file(name: str) -> Response:
        if name not in SHIPPED:
            raise not_found(f"no context {name} (shipped: {', '.join(SHIPPED)})")
        return Response(_dumps(shipped(name)), media_type=LD)

    @app.get(V1 + "/jsonldContexts")
    async def contexts(request: Request) -> Response:
        return Response(_dumps([CORE_URL, *(f"{request.base_url}ngsi-ld/v1/contexts/{n}" for n in SHIPPED)]),
                        media_type=JSON)
