"""The dynamic-table API's error catalog: /rest/v1's error type (``ownbase.rest.errors.ApiError``,
PostgREST's shape ``{code, message, details, hint}``) with the messages only /db/v1 has.

/db/v1 sits next to /rest/v1 and its rows are served by the same engine, so clients parse both the
same way. Codes are PostgREST's (PGRST…) or the SQLSTATE PostgreSQL would raise for the same fault.
"""

from __future__ import annotations

from ownbase.rest.errors import ApiError, bad_body

_BEARER = {"WWW-Authenticate": "Bearer"}


# --- request / credentials ---------------------------------------------------------------------

def credentials(message: str, reason: str) -> ApiError:
    code = "PGRST303" if reason in ("expired", "claims") else "PGRST301"
    return ApiError(401, code, message, headers=_BEARER)


def signed_in_required() -> ApiError:
    return ApiError(401, "42501", "permission denied: the dynamic-table API needs a signed-in user or the service role",
                    hint="Send a user's access token or the service_role key.", headers=_BEARER)


def no_subject() -> ApiError:
    return ApiError(403, "42501", "permission denied: the access token has no user id (a uuid sub claim)")


def not_owner(database_id: str) -> ApiError:
    return ApiError(403, "42501", f"permission denied for database {database_id}",
                    details="The database belongs to another user.")


def not_dynamic(database_id: str) -> ApiError:
    return ApiError(403, "42501", f"permission denied for database {database_id}",
                    details=f"'{database_id}' is an existing schema that the dynamic-table API does not manage.")


def invalid_body(message: str = "Empty or invalid json") -> ApiError:
    return bad_body(message)


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "PGRST102", f"Request body exceeds {limit} bytes")


def method_not_allowed(method: str, allowed: str) -> ApiError:
    return ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}", details=f"Allowed here: {allowed}",
                    headers={"Allow": allowed})


def invalid_path() -> ApiError:
    return ApiError(404, "PGRST125", "Invalid path specified in request URL",
                    details="Paths: /db/v1/{database_id}/tables[/{table}[/rows[/{row_id}]]]")


def from_postgres(state: str, message: str, detail: str | None) -> ApiError:
    """A data error PostgreSQL raised for a row or a default: its SQLSTATE and message, as 400."""
    return ApiError(400, state, message, details=detail)


def invalid_spec(message: str, field: str) -> ApiError:
    return ApiError(400, "22023", message, details=f"field: {field}")


def invalid_value(field: str, reason: str) -> ApiError:
    return ApiError(400, "22P02", f"invalid value for field '{field}': {reason}", details=f"field: {field}")


def missing_value(field: str) -> ApiError:
    return ApiError(400, "23502", f"missing value for field '{field}': it is required (not nullable, no default)",
                    details=f"field: {field}")


def null_value(field: str) -> ApiError:
    return ApiError(400, "23502", f"invalid value for field '{field}': null is not allowed", details=f"field: {field}")


def read_only(field: str) -> ApiError:
    return ApiError(400, "PGRST204", f"field '{field}' is set by the server and cannot be written",
                    details=f"field: {field}")


def unknown_column(field: str, table: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{field}' column of '{table}' in the schema cache",
                    details=f"field: {field}")


def invalid_row_id(row_id: str) -> ApiError:
    return ApiError(400, "22P02", f'invalid input syntax for type uuid: "{row_id}"',
                    details="row_id must be the row's id (a uuid)")


# --- not found / conflicts ------------------------------------------------------------------------

def database_not_found(database_id: str) -> ApiError:
    return ApiError(404, "PGRST205", f"Could not find the database '{database_id}'")


def table_not_found(database_id: str, table: str) -> ApiError:
    return ApiError(404, "PGRST205", f"Could not find the table '{database_id}.{table}' in the schema cache")


def row_not_found(table: str, row_id: str) -> ApiError:
    return ApiError(404, "PGRST116", f"Could not find a row of '{table}' with id {row_id}",
                    details="The result contains 0 rows")


def table_exists(database_id: str, table: str) -> ApiError:
    return ApiError(409, "42P07", f'relation "{table}" already exists', details=f"database: {database_id}")


def table_in_use(table: str, detail: str | None) -> ApiError:
    return ApiError(409, "2BP01", f"cannot drop table {table} because other tables reference it",
                    details=detail, hint="Drop the referencing tables first.")


def quota(message: str) -> ApiError:
    return ApiError(403, "53400", f"quota exceeded: {message}",
                    hint="Drop what you no longer need, or ask the operator to raise the limit.")


def unavailable(message: str) -> ApiError:
    return ApiError(503, "PGRST002", message)
