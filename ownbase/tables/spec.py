"""The JSON column spec of a dynamic table, validated and normalised (pure: no I/O).

Everything that later reaches SQL passes through here: identifiers must match a strict pattern
(and are still quoted when rendered), types come from an allow list and map to fixed SQL type
names, and defaults are parsed into Python values of the column's type (or one of a few fixed
SQL expressions), never kept as raw text for SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ownbase.tables import errors
from ownbase.tables.values import coerce

IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Columns every dynamic table gets; users can neither declare nor (mostly) write them.
SYSTEM_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "id", "type": "uuid", "nullable": False, "default": "gen_random_uuid()", "unique": True,
     "references": None, "primary_key": True, "system": True},
    {"name": "owner_id", "type": "uuid", "nullable": True, "default": "auth.uid()", "unique": False,
     "references": None, "primary_key": False, "system": True},
    {"name": "created_at", "type": "timestamptz", "nullable": False, "default": "now()", "unique": False,
     "references": None, "primary_key": False, "system": True},
    {"name": "updated_at", "type": "timestamptz", "nullable": False, "default": "now()", "unique": False,
     "references": None, "primary_key": False, "system": True},
)
SYSTEM_NAMES = frozenset(c["name"] for c in SYSTEM_COLUMNS)

# API type name -> SQL type name. Aliases normalise to the first spelling of each SQL type.
BASE_TYPES: dict[str, str] = {
    "text": "text",
    "integer": "integer",
    "bigint": "bigint",
    "smallint": "smallint",
    "numeric": "numeric",
    "real": "real",
    "double precision": "double precision",
    "boolean": "boolean",
    "uuid": "uuid",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "json": "json",
    "jsonb": "jsonb",
}
ALIASES: dict[str, str] = {
    "string": "text", "varchar": "text", "character varying": "text",
    "int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint",
    "decimal": "numeric", "float4": "real", "float": "double precision", "float8": "double precision",
    "double": "double precision", "bool": "boolean",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
}
ARRAYABLE = frozenset(BASE_TYPES) - {"json", "jsonb"}

# Defaults that are SQL expressions rather than values: a fixed allow list per base type.
EXPRESSION_DEFAULTS: dict[str, frozenset[str]] = {
    "uuid": frozenset({"gen_random_uuid()", "auth.uid()"}),
    "timestamptz": frozenset({"now()"}),
    "timestamp": frozenset({"now()"}),
    "date": frozenset({"current_date"}),
    "time": frozenset({"now()"}),
}

# Schemas the API never manages, whoever asks.
RESERVED_SCHEMAS = frozenset({
    "public", "auth", "storage", "realtime", "extensions", "ownbase", "information_schema",
    "supabase_migrations", "supabase_functions", "graphql", "graphql_public", "vault", "pgbouncer",
    "net", "cron", "topology", "tiger",
})

# Every database is the schema SCHEMA_PREFIX + id: a namespace only this API creates names in, so
# an id can never take a schema the app or an extension needs (`billing`, `pgsodium`, ...).
SCHEMA_PREFIX = "ownbase_db_"
MAX_DATABASE_ID = 63 - len(SCHEMA_PREFIX)  # PostgreSQL names are at most 63 bytes

MAX_COLUMNS = 200
SPEC_KEYS = frozenset({"name", "type", "nullable", "default", "unique", "references"})


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # normalised API type, e.g. "text", "integer[]"
    nullable: bool = True
    default: Any = None
    has_default: bool = False
    default_is_expression: bool = False
    unique: bool = False
    references: str | None = None

    @property
    def base(self) -> str:
        return self.type.removesuffix("[]")

    @property
    def is_array(self) -> bool:
        return self.type.endswith("[]")

    @property
    def sql_type(self) -> str:
        return BASE_TYPES[self.base] + ("[]" if self.is_array else "")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable,
                "default": self.default if self.has_default else None, "unique": self.unique,
                "references": self.references, "primary_key": False, "system": False}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ColumnSpec":
        """Rebuild a stored (already validated) column."""
        has_default = data.get("default") is not None
        base = str(data["type"]).removesuffix("[]")
        expr = has_default and isinstance(data["default"], str) and not str(data["type"]).endswith("[]") \
            and data["default"] in EXPRESSION_DEFAULTS.get(base, ())
        return cls(name=data["name"], type=data["type"], nullable=bool(data.get("nullable", True)),
                   default=data.get("default"), has_default=has_default, default_is_expression=bool(expr),
                   unique=bool(data.get("unique", False)), references=data.get("references"))


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]

    def column(self, name: str) -> ColumnSpec | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None


def check_identifier(value: Any, what: str, field: str | None = None) -> str:
    if not isinstance(value, str) or not IDENT.match(value):
        shown = repr(value) if not isinstance(value, str) or len(value) < 80 else repr(value[:80] + "...")
        raise errors.invalid_spec(
            f"invalid {what} {shown}: use 1-63 lower-case letters, digits or underscores, "
            "not starting with a digit", field or what)
    return value


def check_database_id(value: str) -> str:
    check_identifier(value, "database_id")
    if value in RESERVED_SCHEMAS or value.startswith(("pg_", "_")):
        raise errors.invalid_spec(f"invalid database_id '{value}': this name is reserved", "database_id")
    return value


def schema_for(database_id: str) -> str:
    """The PostgreSQL schema of a new database (existing ones: see the registry's schema_name).

    Only new ids are held to the shorter length: a longer one made before the namespace existed
    keeps its old schema and stays reachable."""
    check_database_id(database_id)
    if len(database_id) > MAX_DATABASE_ID:
        raise errors.invalid_spec(f"invalid database_id '{database_id}': at most {MAX_DATABASE_ID} characters",
                                  "database_id")
    return SCHEMA_PREFIX + database_id


def normalise_type(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.invalid_spec(f"column '{field}': 'type' must be one of {allowed_types_text()}",
                                  f"columns.{field}.type")
    text = " ".join(value.strip().lower().split())
    array = text.endswith("[]")
    base = text.removesuffix("[]").strip()
    base = ALIASES.get(base, base)
    if base not in BASE_TYPES or (array and base not in ARRAYABLE):
        raise errors.invalid_spec(
            f"column '{field}': type '{value}' is not allowed; allowed types: {allowed_types_text()}",
            f"columns.{field}.type")
    return base + ("[]" if array else "")


def allowed_types_text() -> str:
    return ", ".join(BASE_TYPES) + " (and arrays of them, e.g. text[], except json/jsonb)"


def _bool(value: Any, default: bool, where: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise errors.invalid_spec(f"{where} must be true or false", where)
    return value


def parse_column(raw: Any, index: int, table: str) -> ColumnSpec:
    if not isinstance(raw, dict):
        raise errors.invalid_spec(f"columns[{index}] must be an object", f"columns[{index}]")
    unknown = sorted(set(raw) - SPEC_KEYS)
    if unknown:
        raise errors.invalid_spec(f"columns[{index}]: unknown key(s) {', '.join(unknown)}; allowed: "
                                  + ", ".join(sorted(SPEC_KEYS)), f"columns[{index}]")
    name = check_identifier(raw.get("name"), f"column name (columns[{index}].name)", f"columns[{index}].name")
    if name in SYSTEM_NAMES:
        raise errors.invalid_spec(f"column '{name}' is created automatically; choose another name",
                                  f"columns.{name}.name")
    references = raw.get("references")
    if references is not None:
        references = check_identifier(references, f"column '{name}' references", f"columns.{name}.references")
    if raw.get("type") is None and references is not None:
        typ = "uuid"  # a reference points at the other table's uuid id
    else:
        typ = normalise_type(raw.get("type"), name)
    if references is not None and typ != "uuid":
        raise errors.invalid_spec(f"column '{name}' references '{references}' so its type must be uuid "
                                  f"(the id of '{references}'), not {typ}", f"columns.{name}.type")
    nullable = _bool(raw.get("nullable"), True, f"columns.{name}.nullable")
    unique = _bool(raw.get("unique"), False, f"columns.{name}.unique")
    col = ColumnSpec(name=name, type=typ, nullable=nullable, unique=unique, references=references)
    if "default" in raw and raw["default"] is not None:
        col = _with_default(col, raw["default"])
    return col


def _with_default(col: ColumnSpec, value: Any) -> ColumnSpec:
    if not col.is_array and isinstance(value, str) and value.strip().lower() in EXPRESSION_DEFAULTS.get(col.base, ()):
        return replace(col, default=value.strip().lower(), has_default=True, default_is_expression=True)
    try:
        coerced = coerce(col.type, value)
    except ValueError as exc:
        allowed = EXPRESSION_DEFAULTS.get(col.base)
        extra = f" (or one of: {', '.join(sorted(allowed))})" if allowed and not col.is_array else ""
        raise errors.invalid_spec(f"column '{col.name}': invalid default: {exc}{extra}",
                                  f"columns.{col.name}.default") from None
    return replace(col, default=coerced, has_default=True)


def parse_table(body: Any) -> TableSpec:
    if not isinstance(body, dict):
        raise errors.invalid_body("the body must be a JSON object {\"name\": ..., \"columns\": [...]}")
    unknown = sorted(set(body) - {"name", "columns"})
    if unknown:
        raise errors.invalid_spec(f"unknown key(s) {', '.join(unknown)}; allowed: name, columns", unknown[0])
    name = check_identifier(body.get("name"), "table name", "name")
    if name.startswith("pg_"):
        raise errors.invalid_spec(f"invalid table name '{name}': this name is reserved", "name")
    raw_columns = body.get("columns", [])
    if not isinstance(raw_columns, list):
        raise errors.invalid_spec("'columns' must be an array of column objects", "columns")
    if len(raw_columns) > MAX_COLUMNS:
        raise errors.invalid_spec(f"too many columns ({len(raw_columns)}); at most {MAX_COLUMNS}", "columns")
    columns = tuple(parse_column(raw, i, name) for i, raw in enumerate(raw_columns))
    seen: set[str] = set()
    for col in columns:
        if col.name in seen:
            raise errors.invalid_spec(f"column '{col.name}' is declared twice", f"columns.{col.name}.name")
        seen.add(col.name)
    return TableSpec(name=name, columns=columns)


def describe(table: TableSpec) -> list[dict[str, Any]]:
    """The columns as the API lists them: system columns first, then the declared ones."""
    return [dict(c) for c in SYSTEM_COLUMNS] + [c.to_json() for c in table.columns]
