"""Identifier quoting: the one place SQL text is built from a name.

Every service that puts a schema, table, column, function or alias name into SQL text goes through
`quote_ident` (a security boundary: a second implementation is a second place to get it wrong).
Values never come here; they are parameters.

The result is what PostgreSQL itself would do with a delimited identifier: embedded double quotes
are doubled, a name longer than 63 bytes (NAMEDATALEN - 1) is cut to 63 bytes on a character
boundary, as the server does silently (so two names that differ only after byte 63 are the same
identifier here and there). A NUL, a lone surrogate or an empty name cannot be an identifier in
PostgreSQL, so they are refused with `IdentifierError` before any SQL is sent.
"""

from __future__ import annotations

MAX_IDENT_BYTES = 63  # NAMEDATALEN - 1 in a default PostgreSQL build


class IdentifierError(ValueError):
    """A name that PostgreSQL cannot accept as an identifier (empty, a NUL, a lone surrogate).

    ``sqlstate`` and the message are what PostgreSQL reports for the same name, so a service can
    answer exactly as it would for the database's own error."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message


def clip_ident(name: str) -> str:
    """The name PostgreSQL stores for ``name``: at most 63 UTF-8 bytes, never half a character."""
    if not isinstance(name, str):
        raise TypeError(f"identifier must be str, not {type(name).__name__}")
    if name == "":
        raise IdentifierError("42601", 'zero-length delimited identifier at or near """"')
    if "\x00" in name:
        raise IdentifierError("22021", 'invalid byte sequence for encoding "UTF8": 0x00')
    if name.isascii():  # one byte per character
        return name if len(name) <= MAX_IDENT_BYTES else name[:MAX_IDENT_BYTES]
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON allows "\ud800"): not UTF-8 at all
        bad = " ".join(f"0x{b:02x}" for b in exc.object[exc.start:exc.end].encode("utf-8", "surrogatepass"))
        raise IdentifierError("22021", f'invalid byte sequence for encoding "UTF8": {bad}') from None
    if len(raw) <= MAX_IDENT_BYTES:
        return name
    # errors="ignore" drops the partial multi-byte character at the cut, as pg_mbcliplen does.
    return raw[:MAX_IDENT_BYTES].decode("utf-8", errors="ignore")


def quote_ident(name: str) -> str:
    """``name`` as a delimited identifier (always quoted, so case and reserved words are kept)."""
    # Fast path for the names every rendered query holds (catalog names: short ASCII, no NUL).
    if type(name) is str and name.isascii() and 0 < len(name) <= MAX_IDENT_BYTES and "\x00" not in name:
        return '"' + name.replace('"', '""') + '"'
    return '"' + clip_ident(name).replace('"', '""') + '"'


def quote_qualified(*parts: str) -> str:
    """``schema.name`` (or any dotted path) with every part quoted."""
    if not parts:
        raise TypeError("a qualified name needs at least one part")
    return ".".join(quote_ident(p) for p in parts)
