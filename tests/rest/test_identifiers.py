"""Names a request puts into SQL (aliases) go through ownbase/db/sql.py quote_ident: one that
PostgreSQL cannot hold is a 400 in PostgREST's shape, a long one behaves as PostgreSQL's own
63-byte cut, and a quote inside one stays inside the name."""

from __future__ import annotations

from tests.conftest import ServerHandle
from tests.rest.conftest import raw


def test_alias_with_nul_is_a_client_error(rest_server: ServerHandle) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        for path in ("/users?select=a%00b:id", "/posts?select=id,a%00b:comments(id)", "/users?select=id,x%00:id"):
            r = c.get(path)
            assert r.status_code == 400, (path, r.status_code, r.text)
            assert r.json()["code"] == "22021", r.text  # what PostgreSQL says for a NUL in text


def test_alias_with_quotes_stays_one_name(rest_server: ServerHandle) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.get("/users", params={"select": '"a\\" as x, \\"b":id', "order": "id", "limit": "1"})
        assert r.status_code == 200, r.text
        assert list(r.json()[0]) == ['a" as x, "b']


def test_long_alias_is_cut_as_postgres_cuts_it(rest_server: ServerHandle) -> None:
    with raw(rest_server, rest_server.service_key) as c:
        r = c.get(f"/users?select={'n' * 70}:id&order=id&limit=1")
        assert r.status_code == 200, r.text
        assert list(r.json()[0]) == ["n" * 63]
