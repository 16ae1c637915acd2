"""The one error catalog of /rest/v1, in PostgREST's shape: ``{code, message, details, hint}``.

Codes and messages follow PostgREST (PGRST1xx request, PGRST2xx schema cache, PGRST3xx JWT) and
SQLSTATEs raised by PostgreSQL are mapped to HTTP statuses the way PostgREST maps them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None, hint: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}

    def response(self) -> Response:
        content = json.dumps(self.body()).encode()
        headers = {"Proxy-Status": f"PostgREST; error={self.code}", **self.headers}
        return Response(content, status_code=self.status, headers=headers,
                        media_type="application/json; charset=utf-8")


# --- PGRST1xx: the request -------------------------------------------------------------------

def parse_error(kind: str, value: str, details: str) -> ApiError:
    """PGRST100; ``kind`` is e.g. "select parameter", "filter", "order"."""
    return ApiError(400, "PGRST100", f'"failed to parse {kind} ({value})" (line 1, column 1)', details)


def rpc_method(method: str) -> ApiError:
    return ApiError(405, "PGRST101", f"Cannot use the {method} method on RPC")


def bad_body(message: str = "Empty or invalid json") -> ApiError:
    return ApiError(400, "PGRST102", message)


def bad_range(details: str, total: int | None = None) -> ApiError:
    headers = {"Content-Range": f"*/{total}"} if total is not None else None
    return ApiError(416, "PGRST103", "Requested range not satisfiable", details, headers=headers)


def put_filters() -> ApiError:
    return ApiError(405, "PGRST105", "Filters must include all and only primary key columns with 'eq' operators")


def invalid_schema(schema: str, exposed: Sequence[str]) -> ApiError:
    return ApiError(406, "PGRST106", f"Invalid schema: {schema}",
                    hint=f"Only the following schemas are exposed: {', '.join(exposed)}")


def not_acceptable(types: Sequence[str]) -> ApiError:
    return ApiError(406, "PGRST107", f"None of these media types are available: {', '.join(types)}")


def not_embedded(name: str) -> ApiError:
    return ApiError(400, "PGRST108", f"'{name}' is not an embedded resource in this request",
                    hint=f"Verify that '{name}' is included in the 'select' query parameter.")


def put_limit() -> ApiError:
    return ApiError(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT")


def put_mismatch() -> ApiError:
    return ApiError(400, "PGRST115", "Payload values do not match URL in primary key column(s)")


def singular(rows: int) -> ApiError:
    return ApiError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                    f"The result contains {rows} rows")


def unsupported_method(method: str) -> ApiError:
    return ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")


def related_order(parent: str, target: str) -> ApiError:
    return ApiError(400, "PGRST118", f"A related order on '{target}' is not possible",
                    f"'{parent}' and '{target}' do not form a many-to-one or one-to-one relationship")


def bad_embed_operator(target: str) -> ApiError:
    return ApiError(400, "PGRST120", f"Bad operator on the '{target}' embedded resource",
                    "Only is null or not is null filters are allowed on embedded resources")


def strict_prefs(invalid: Sequence[str]) -> ApiError:
    return ApiError(400, "PGRST122", "Invalid preferences given with handling=strict",
                    f"Invalid preferences: {', '.join(invalid)}")


def aggregates_disabled() -> ApiError:
    return ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")


def invalid_path() -> ApiError:
    return ApiError(404, "PGRST125", "Invalid path specified in request URL")


def not_implemented(feature: str) -> ApiError:
    return ApiError(400, "PGRST127", "Feature not implemented", feature)


def body_too_large(limit: int) -> ApiError:
    # PostgREST leaves this to the proxy; we answer in the same shape with 413.
    return ApiError(413, "PGRST102", "Request body is too large", f"The limit is {limit} bytes")


# --- PGRST2xx: schema cache --------------------------------------------------------------------

def no_relationship(parent: str, child: str, schema: str, hint_used: str | None,
                    suggestion: str | None = None) -> ApiError:
    using = f" using the hint '{hint_used}'" if hint_used else ""
    return ApiError(
        400, "PGRST200",
        f"Could not find a relationship between '{parent}' and '{child}' in the schema cache",
        f"Searched for a foreign key relationship between '{parent}' and '{child}'{using} in the schema "
        f"'{schema}', but no matches were found.",
        f"Perhaps you meant '{suggestion}' instead of '{child}'." if suggestion else None,
    )


def ambiguous_embed(parent: str, child: str, details: list[dict[str, str]], hints: list[str]) -> ApiError:
    """``hints``: ``table!constraint`` (``table!junction`` for many-to-many), as PostgREST lists them."""
    listed = ", ".join(f"'{h}'" for h in hints)
    return ApiError(
        300, "PGRST201",
        f"Could not embed because more than one relationship was found for '{parent}' and '{child}'",
        details,
        f"Try changing '{child}' to one of the following: {listed}. Find the desired relationship in "
        f"the 'details' key.",
    )


def no_function(schema: str, name: str, keys: Sequence[str], *, raw_type: str | None, json_post: bool,
                hint: str | None) -> ApiError:
    """PGRST202 worded as PostgREST words it. ``raw_type``: a POST body sent raw (text, xml,
    bytea); ``json_post``: a JSON POST body, which a single unnamed json/jsonb parameter could take."""
    func = f"{schema}.{name}"
    listed = ", ".join(keys)
    if raw_type is not None:
        message = f"Could not find the function {func} in the schema cache"
    elif keys:
        message = f"Could not find the function {func}({listed}) in the schema cache"
    else:
        message = f"Could not find the function {func} without parameters in the schema cache"
    params = f" with parameter{'s' if len(keys) > 1 else ''} {listed}" if keys else " without parameters"
    if raw_type is not None:
        searched = f" with a single unnamed {raw_type} parameter"
    elif json_post:
        searched = params + " or with a single unnamed json/jsonb parameter"
    else:
        searched = params
    details = f"Searched for the function {func}{searched}, but no matches were found in the schema cache."
    return ApiError(404, "PGRST202", message, details,
                    f"Perhaps you meant to call the function {hint}" if hint else None)


def ambiguous_function(candidates: Sequence[str]) -> ApiError:
    return ApiError(300, "PGRST203",
                    f"Could not choose the best candidate function between: {', '.join(candidates)}",
                    hint="Try renaming the parameters or the function itself in the database so function "
                         "overloading can be resolved")


def no_column(column: str, relation: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{column}' column of '{relation}' in the schema cache")


def no_table(schema: str, table: str, suggestion: str | None = None) -> ApiError:
    return ApiError(404, "PGRST205", f"Could not find the table '{schema}.{table}' in the schema cache",
                    hint=f"Perhaps you meant the table '{schema}.{suggestion}'" if suggestion else None)


def undefined_column(table: str, column: str) -> ApiError:
    # What PostgreSQL itself answers for an unknown column in a select/filter (42703 -> 400).
    return ApiError(400, "42703", f"column {table}.{column} does not exist")


def schema_cache_not_loaded() -> ApiError:
    return ApiError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.")


def pool_timeout() -> ApiError:
    return ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.")


def db_unreachable(details: str) -> ApiError:
    return ApiError(503, "PGRST000", "Database connection error.", details)


# --- PGRST3xx: JWT -----------------------------------------------------------------------------

def jwt_error(message: str, reason: str) -> ApiError:
    code = "PGRST303" if reason in ("expired", "claims") else "PGRST301"
    return ApiError(401, code, message, headers={
        "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'})


def missing_key() -> ApiError:
    # Supabase's gateway answers this before PostgREST sees the request.
    return ApiError(401, "PGRST302", "No API key found in request",
                    hint="No `apikey` request header or url param was found.",
                    headers={"WWW-Authenticate": "Bearer"})


# --- SQLSTATE → HTTP -----------------------------------------------------------------------------

# PostGIS reports geometry it cannot parse (client input) as XX000 internal_error; PostgREST would
# answer 500, but bad input must get a 4xx, so these messages are treated as invalid text input.
POSTGIS_INPUT_ERRORS = ("parse error", "invalid geometry", "invalid geojson", "unable to find 'coordinates'",
                        "unable to find 'type'", "wkb structure", "invalid hex string", "unknown geojson type")


def sqlstate_status(code: str, message: str, role: str) -> int:
    """PostgREST's mapping (first match wins), except that PostGIS input errors are a 400."""
    c = code or ""
    if c == "XX000" and any(p in message.lower() for p in POSTGIS_INPUT_ERRORS):
        return 400
    if c.startswith("08"):
        return 503
    if c.startswith("09"):
        return 500
    if c.startswith(("0L", "0P")):
        return 403
    if c in ("23503", "23505"):
        return 409
    if c == "25006":
        return 405
    if c == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if c == "22023":
        return 401 if message.startswith("role ") and message.endswith("does not exist") else 400
    if c.startswith("25"):
        return 500
    if c.startswith("28"):
        return 403
    if c.startswith(("2D", "38", "39", "3B", "40")):
        return 500
    if c == "53400":
        return 500
    if c.startswith("53"):
        return 503
    if c.startswith(("54", "55")):
        return 500
    if c == "57P01":
        return 503
    if c.startswith(("57", "58", "F0", "HV")):
        return 500
    if c == "P0001":
        return 400
    if c.startswith(("P0", "XX")):
        return 500
    if c == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if c == "42P01":
        return 404
    if c == "42P17":
        return 500
    if c == "42501":
        return 401 if role == "anon" else 403
    if c.startswith("PT") and c[2:].isdigit():
        return int(c[2:])
    return 400


def from_postgres(exc: Any, role: str) -> ApiError:
    code = getattr(exc, "sqlstate", None) or "PGRSTX00"
    message = str(getattr(exc, "message", None) or exc)
    details = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    if code == "PGRST":
        # RAISE SQLSTATE 'PGRST' USING message = '{json}', detail = '{json}'
        try:
            custom = json.loads(message)
            meta = json.loads(details or "")
            raw_headers = meta.get("headers") or {}
            pairs = raw_headers.items() if isinstance(raw_headers, dict) else \
                [kv for h in raw_headers for kv in dict(h).items()]
            return ApiError(int(meta.get("status", 400)), str(custom.get("code", "")),
                            str(custom.get("message", "")), custom.get("details"), custom.get("hint"),
                            {str(k): str(v) for k, v in pairs})
        except (ValueError, TypeError, AttributeError, RecursionError):
            return ApiError(500, "PGRST121", 'Could not parse JSON in the "RAISE SQLSTATE \'PGRST\'" error',
                            f"Invalid JSON value for MESSAGE: '{message}'")
    status = sqlstate_status(code, message, role)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ApiError(status, code, message, details, hint, headers)
