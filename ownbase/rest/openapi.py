"""The OpenAPI 2 (Swagger) document PostgREST serves at ``GET /`` — read by type generators."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ownbase.rest import errors
from ownbase.rest.engine import get_schema_cache
from ownbase.rest.request import OPENAPI, negotiate
from ownbase.rest.schema_cache import Column, Function, SchemaCache, Table

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.http.auth_context import AuthContext

VERSION = "12.2.0 (ownbase)"


def _prop(col: Column, table: Table, cache: SchemaCache) -> dict[str, Any]:
    base = col.base_type
    prop: dict[str, Any] = {}
    if col.item_type is not None:
        prop["type"] = "array"
        prop["format"] = base
        item = _prop(Column(col.name, col.item_type, True, None, 0, base_type=col.item_type), table, cache)
        prop["items"] = {"type": item.get("type", "string")}
    elif base in ("smallint", "integer"):
        prop.update(type="integer", format="integer")
    elif base == "bigint":
        prop.update(type="integer", format="bigint")
    elif base in ("numeric", "real", "double precision"):
        prop.update(type="number", format=base)
    elif base == "boolean":
        prop.update(type="boolean", format="boolean")
    elif base in ("json", "jsonb"):
        prop.update(format=base)
    elif base in ("text", "character varying", "character"):
        prop.update(type="string", format=base)
        if col.max_length:
            prop["maxLength"] = col.max_length
    else:
        prop.update(type="string", format=col.type)
    if col.enum:
        prop["enum"] = list(col.enum)
    notes = []
    if col.name in table.pk:
        notes.append("This is a Primary Key.<pk/>")
    for fk in cache.fks_from(table):
        if col.name in fk.columns and len(fk.columns) == 1:
            notes.append(f"This is a Foreign Key to `{fk.ref_table}.{fk.ref_columns[0]}`."
                         f"<fk table='{fk.ref_table}' column='{fk.ref_columns[0]}'/>")
            break
    desc = col.comment or ""
    if notes:
        desc = (desc + "\n\n" if desc else "") + "Note:\n" + "\n".join(notes)
    if desc:
        prop["description"] = desc
    if col.default is not None and not col.default.startswith("nextval("):
        d = re.sub(r"::[\w .\"\[\]]+$", "", col.default)
        if prop.get("type") == "string":
            prop["default"] = d.strip("'")
        else:
            try:
                prop["default"] = json.loads(d)
            except ValueError:
                pass
    return prop


def _definition(table: Table, cache: SchemaCache) -> dict[str, Any]:
    props = {c.name: _prop(c, table, cache) for c in sorted(table.columns.values(), key=lambda c: c.position)}
    out: dict[str, Any] = {"type": "object", "properties": props}
    required = [c.name for c in table.columns.values() if not c.nullable]
    if required:
        out["required"] = required
    if table.comment:
        out["description"] = table.comment
    return out


def _rpc_path(fn: Function) -> dict[str, Any]:
    args = [a for a in fn.in_args if a.name]
    props = {a.name: {"type": "string", "format": a.type} for a in args}
    required = [a.name for a in args if not a.has_default]
    body = {"name": "args", "in": "body", "required": True,
            "schema": {"type": "object", "properties": props, **({"required": required} if required else {})}}
    tag = f"(rpc) {fn.name}"
    ok = {"200": {"description": "OK"}}
    path: dict[str, Any] = {"post": {"tags": [tag], "parameters": [body, {"$ref": "#/parameters/preferParams"}],
                                     "produces": ["application/json", "application/vnd.pgrst.object+json"],
                                     "responses": ok}}
    if fn.comment:
        path["post"]["summary"] = fn.comment.split("\n")[0]
    if fn.volatility != "v":
        path["get"] = {"tags": [tag], "parameters": [
            {"name": a.name, "in": "query", "required": not a.has_default, "type": "string", "format": a.type}
            for a in args], "produces": ["application/json", "application/vnd.pgrst.object+json"],
            "responses": ok}
    return path


def document(cache: SchemaCache, schema: str, host: str, scheme: str, role: str | None = None) -> dict[str, Any]:
    """``role``: list only what that role was granted (as PostgREST does); None lists everything."""

    def can(t: Table, priv: str) -> bool:
        return role is None or role in t.grants.get(priv, frozenset())

    tables = sorted((t for t in cache.tables.values() if t.schema == schema
                     and any(can(t, p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE"))),
                    key=lambda t: t.name)
    paths: dict[str, Any] = {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                                           "produces": ["application/openapi+json", "application/json"],
                                           "responses": {"200": {"description": "OK"}}}}}
    parameters: dict[str, Any] = {
        "preferParams": {"name": "Prefer", "description": "Preference", "required": False, "in": "header",
                         "type": "string", "enum": ["params=single-object"]},
        "preferReturn": {"name": "Prefer", "description": "Preference", "required": False, "in": "header",
                         "type": "string", "enum": ["return=representation", "return=minimal", "return=none"]},
        "preferCount": {"name": "Prefer", "description": "Preference", "required": False, "in": "header",
                        "type": "string", "enum": ["count=none"]},
        "preferPost": {"name": "Prefer", "description": "Preference", "required": False, "in": "header",
                       "type": "string", "enum": ["return=representation", "return=minimal", "return=none",
                                                  "resolution=ignore-duplicates", "resolution=merge-duplicates"]},
        "select": {"name": "select", "description": "Filtering Columns", "required": False, "in": "query",
                   "type": "string"},
        "on_conflict": {"name": "on_conflict", "description": "On Conflict", "required": False, "in": "query",
                        "type": "string"},
        "order": {"name": "order", "description": "Ordering", "required": False, "in": "query", "type": "string"},
        "range": {"name": "Range", "description": "Limiting and Pagination", "required": False, "in": "header",
                  "type": "string"},
        "rangeUnit": {"name": "Range-Unit", "description": "Limiting and Pagination", "required": False,
                      "in": "header", "type": "string", "default": "items"},
        "offset": {"name": "offset", "description": "Limiting and Pagination", "required": False, "in": "query",
                   "type": "string"},
        "limit": {"name": "limit", "description": "Limiting and Pagination", "required": False, "in": "query",
                  "type": "string"},
    }
    definitions: dict[str, Any] = {}
    for t in tables:
        definitions[t.name] = _definition(t, cache)
        parameters[f"body.{t.name}"] = {"name": t.name, "description": t.name, "required": False, "in": "body",
                                        "schema": {"$ref": f"#/definitions/{t.name}"}}
        filters = []
        for c in sorted(t.columns.values(), key=lambda c: c.position):
            key = f"rowFilter.{t.name}.{c.name}"
            parameters[key] = {"name": c.name, "required": False, "in": "query", "type": "string",
                               "format": c.type, **({"description": c.comment} if c.comment else {})}
            filters.append({"$ref": f"#/parameters/{key}"})
        tag = [t.name]
        ok_array = {"description": "OK", "schema": {"type": "array", "items": {"$ref": f"#/definitions/{t.name}"}}}
        path: dict[str, Any] = {"get": {
            "tags": tag, "parameters": filters + [{"$ref": f"#/parameters/{p}"} for p in
                                                  ("select", "order", "range", "rangeUnit", "offset", "limit",
                                                   "preferCount")],
            "responses": {"200": ok_array, "206": {"description": "Partial Content"}}}}
        if not can(t, "SELECT"):
            del path["get"]
        if t.insertable and can(t, "INSERT"):
            path["post"] = {"tags": tag, "parameters": [{"$ref": f"#/parameters/body.{t.name}"},
                                                        {"$ref": "#/parameters/select"},
                                                        {"$ref": "#/parameters/preferPost"}],
                            "responses": {"201": {"description": "Created"}}}
        if t.updatable and can(t, "UPDATE"):
            path["patch"] = {"tags": tag, "parameters": filters + [{"$ref": f"#/parameters/body.{t.name}"},
                                                                   {"$ref": "#/parameters/preferReturn"}],
                             "responses": {"204": {"description": "No Content"}}}
        if t.deletable and can(t, "DELETE"):
            path["delete"] = {"tags": tag, "parameters": filters + [{"$ref": "#/parameters/preferReturn"}],
                              "responses": {"204": {"description": "No Content"}}}
        if t.comment:
            for op in path.values():
                op["summary"] = t.comment.split("\n")[0]
        paths[f"/{t.name}"] = path
    for (s, name), fns in sorted(cache.functions.items()):
        fns = [f for f in fns if role is None or role in f.executable_by]
        if s == schema and fns:
            paths[f"/rpc/{name}"] = _rpc_path(fns[0])
    return {
        "swagger": "2.0",
        "info": {"description": "This is a dynamic API generated by PostgREST", "title": "PostgREST API",
                 "version": VERSION},
        "externalDocs": {"description": "PostgREST Documentation", "url": "https://postgrest.org/en/v12/references/api.html"},
        "host": host,
        "basePath": "/",
        "schemes": [scheme],
        "consumes": ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
                     "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
                     "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "securityDefinitions": {"JWT": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        "security": [{"JWT": []}],
    }


async def openapi_response(ctx: Context, request: Request, schema: str, auth: AuthContext) -> Response:
    media = negotiate(request.headers.get("accept"), allow_openapi=True)
    if media != OPENAPI:
        raise errors.not_acceptable([request.headers.get("accept", "")])
    cache = await get_schema_cache(ctx)
    host = request.headers.get("host") or f"{ctx.settings.host}:{ctx.settings.port}"
    doc = document(cache, schema, host, request.url.scheme, auth.role)
    body = json.dumps(doc).encode()
    if request.method == "HEAD":
        body = b""
    return Response(body, media_type="application/openapi+json; charset=utf-8")
