"""The dynamic-table API's error catalog, in PostgREST's shape ``{code, message, details, hint}``.

/db/v1 sits next to /rest/v1 and its rows are served by the same engine, so clients parse both the
same way. Codes are PostgREST's (PGRST…) or the SQLSTATE PostgreSQL would raise for the same fault.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class TablesError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint

    def response(self) -> Response:
        body = {"code": self.code, "message": self.message, "details": self.details, "hint": self.hint}
        headers = {"Proxy-Status": f"PostgREST; error={self.code}"}
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return Response(json.dumps(body), status_code=self.status, headers=headers,
                        media_type="application/json; charset=utf-8")


# --- request / credentials ---------------------------------------------------------------------

def credentials(message: str, reason: str) -> TablesError:
    code = "PGRST303" if reason in ("expired", "claims") else "PGRST301"
    return TablesError(401, code, message)


def signed_in_required() -> TablesError:
    return TablesError(401, "42501", "permission denied: the dynamic-table API needs a signed-in user "
                       "or the service role", hint="Send a user's access token or the service_role key.")


def no_subject() -> TablesError:
    return TablesError(403, "42501", "permission denied: the access token has no user id (a uuid sub claim)")


def not_owner(database_id: str) -> TablesError:
    return TablesError(403, "42501", f"permission denied for database {database_id}",
                       details="The database belongs to another user.")


def not_dynamic(database_id: str) -> TablesError:
    return TablesError(403, "42501", f"permission denied for database {database_id}",
                       details=f"'{database_id}' is an existing schema that the dynamic-table API does not manage.")


def invalid_body(message: str = "Empty or invalid json") -> TablesError:
    return TablesError(400, "PGRST102", message)


def invalid_spec(message: str, field: str) -> TablesError:
    return TablesError(400, "22023", message, details=f"field: {field}")


def invalid_value(field: str, reason: str) -> TablesError:
    return TablesError(400, "22P02", f"invalid value for field '{field}': {reason}", details=f"field: {field}")


def missing_value(field: str) -> TablesError:
    return TablesError(400, "23502", f"missing value for field '{field}': it is required (not nullable, no default)",
                       details=f"field: {field}")


def null_value(field: str) -> TablesError:
    return TablesError(400, "23502", f"invalid value for field '{field}': null is not allowed", details=f"field: {field}")


def read_only(field: str) -> TablesError:
    return TablesError(400, "PGRST204", f"field '{field}' is set by the server and cannot be written",
                       details=f"field: {field}")


def unknown_column(field: str, table: str) -> TablesError:
    return TablesError(400, "PGRST204", f"Could not find the '{field}' column of '{table}' in the schema cache",
                       details=f"field: {field}")


def invalid_row_id(row_id: str) -> TablesError:
    return TablesError(400, "22P02", f'invalid input syntax for type uuid: "{row_id}"',
                       details="row_id must be the row's id (a uuid)")


# --- not found / conflicts ------------------------------------------------------------------------

def database_not_found(database_id: str) -> TablesError:
    return TablesError(404, "PGRST205", f"Could not find the database '{database_id}'")


def table_not_found(database_id: str, table: str) -> TablesError:
    return TablesError(404, "PGRST205", f"Could not find the table '{database_id}.{table}' in the schema cache")


def row_not_found(table: str, row_id: str) -> TablesError:
    return TablesError(404, "PGRST116", f"Could not find a row of '{table}' with id {row_id}",
                       details="The result contains 0 rows")


def table_exists(database_id: str, table: str) -> TablesError:
    return TablesError(409, "42P07", f'relation "{table}" already exists', details=f"database: {database_id}")


def table_in_use(table: str, detail: str | None) -> TablesError:
    return TablesError(409, "2BP01", f"cannot drop table {table} because other tables reference it",
                       details=detail, hint="Drop the referencing tables first.")


def quota(message: str) -> TablesError:
    return TablesError(403, "53400", f"quota exceeded: {message}",
                       hint="Drop what you no longer need, or ask the operator to raise the limit.")


def unavailable(message: str) -> TablesError:
    return TablesError(503, "PGRST002", message)
