"""CSV request bodies (POST/PATCH/PUT with Content-Type: text/csv) and PostgREST 13's spread of
to-many embeds (``select=title,...comments(id)``: each spread column becomes an array)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownbase.rest.errors import ApiError
from ownbase.rest.request import parse_csv_body

from tests.conftest import sql
from tests.rest.conftest import ALICE, BOB, raw, supa

CSV = {"Content-Type": "text/csv"}
REP = {"Content-Type": "text/csv", "Prefer": "return=representation"}


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "message", "details", "hint"} and body["code"] == code, body
    return body


# --- CSV bodies ---------------------------------------------------------------------------------

def test_csv_insert_quoting_newlines_nulls(reset) -> None:
    body = (
        'k,v,note\r\n'
        'plain,1,simple\r\n'
        'comma,2,"hello, world"\r\n'
        'newline,3,"two\nlines, and ""quotes"""\r\n'
        'empty_is_null,4,\r\n'
        'null_word,5,NULL\r\n'
        '"quoted ""key""",6,""\r\n'
        'quoted_null,7,"NULL"\r\n'
    )
    with raw(reset, reset.service_key) as h:
        r = h.post("/kv", content=body.encode(), headers={**REP, "Content-Type": "text/csv; charset=utf-8"})
        assert r.status_code == 201, r.text
        assert r.json() == [
            {"k": "plain", "v": 1, "note": "simple"},
            {"k": "comma", "v": 2, "note": "hello, world"},
            {"k": "newline", "v": 3, "note": 'two\nlines, and "quotes"'},
            {"k": "empty_is_null", "v": 4, "note": None},
            {"k": "null_word", "v": 5, "note": None},
            {"k": 'quoted "key"', "v": 6, "note": ""},
            {"k": "quoted_null", "v": 7, "note": "NULL"},
        ]
    stored = sql(reset, "select k, v, note from rest_fixture.kv order by v")
    assert [tuple(x) for x in stored][2] == ("newline", 3, 'two\nlines, and "quotes"')
    assert [x["note"] for x in stored][3:] == [None, None, "", "NULL"]


def test_csv_insert_types_select_minimal_and_rls(reset, mint) -> None:
    body = ("id,username,age,mood,nicknames,score\n"
            "00000000-0000-0000-0000-0000000000d1,dora,41,happy,\"{d,dd}\",3.50\n"
            "00000000-0000-0000-0000-0000000000d2,eve,,sad,{},\n")
    with raw(reset, reset.service_key) as h:
        r = h.post("/users?select=username,age,mood,nicknames,score", content=body.encode(), headers=REP)
        assert r.status_code == 201, r.text
        assert r.json() == [{"username": "dora", "age": 41, "mood": "happy", "nicknames": ["d", "dd"], "score": 3.5},
                            {"username": "eve", "age": None, "mood": "sad", "nicknames": [], "score": None}]
        # return=minimal (the default): 201, empty body
        r = h.post("/kv", content=b"k,v\nm1,1\nm2,2\n", headers={**CSV, "Prefer": "count=exact"})
        assert r.status_code == 201 and r.content == b"" and r.headers["content-range"] == "*/2"
        assert sql(reset, "select count(*) from rest_fixture.kv where k like 'm_'")[0][0] == 2
        # a header line alone inserts nothing
        r = h.post("/kv", content=b"k,v\n", headers=REP)
        assert r.status_code == 201 and r.json() == []
        # a value the column type rejects is PostgreSQL's 22P02, a 400
        _error(h.post("/kv", content=b"k,v\nbad,abc\n", headers=CSV), 400, "22P02")
    # row-level security applies to CSV rows as to JSON ones: Alice may only post as herself
    with raw(reset, mint(ALICE)) as h:
        r = h.post("/posts?select=title", content=f"author_id,title\n{ALICE},from csv\n".encode(), headers=REP)
        assert r.status_code == 201 and r.json() == [{"title": "from csv"}]
        r = h.post("/posts", content=f"author_id,title\n{BOB},forged\n".encode(), headers=CSV)
        _error(r, 403, "42501")
    assert sql(reset, "select count(*) from rest_fixture.posts where title = 'forged'")[0][0] == 0


def test_csv_upsert_merge_ignore_and_missing_default(reset) -> None:
    with raw(reset, reset.service_key) as h:
        assert h.post("/kv", content=b"k,v,note\nu,1,first\n", headers=CSV).status_code == 201
        merge = {**REP, "Prefer": "return=representation,resolution=merge-duplicates"}
        r = h.post("/kv", content=b"k,v\nu,2\nnew,3\n", headers=merge)
        assert r.status_code == 201 and r.json() == [{"k": "u", "v": 2, "note": "first"},
                                                     {"k": "new", "v": 3, "note": "none"}]
        assert r.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
        r = h.post("/kv", content=b"k,v\nu,5\n", headers=merge)
        assert r.status_code == 200 and r.json() == [{"k": "u", "v": 5, "note": "first"}]
        ignore = {**REP, "Prefer": "return=representation,resolution=ignore-duplicates"}
        r = h.post("/kv", content=b"k,v\nu,99\nother,4\n", headers=ignore)
        assert r.status_code == 201 and r.json() == [{"k": "other", "v": 4, "note": "none"}]
        assert sql(reset, "select v from rest_fixture.kv where k = 'u'")[0][0] == 5
        # on_conflict on a unique column other than the primary key
        r = h.post("/tags?on_conflict=name&select=name", content=b"name\npython\nzig\n", headers=merge)
        assert r.status_code == 201 and r.json() == [{"name": "python"}, {"name": "zig"}]
        # columns= names a column the CSV lacks: missing=default gives it the column default …
        r = h.post("/kv?columns=k,v,note", content=b"k,note\nd1,x\n",
                   headers={**CSV, "Prefer": "return=representation,missing=default"})
        assert r.status_code == 201 and r.json() == [{"k": "d1", "v": 0, "note": "x"}]
        # … without it the column is NULL (a not-null violation here)
        _error(h.post("/kv?columns=k,v", content=b"k\nd2\n", headers=CSV), 400, "23502")


def test_csv_malformed_is_400_never_500(reset) -> None:
    with raw(reset, reset.service_key) as h:
        cases = {
            b"k,v\nx,1\ny\n": "line 3 has 1 field(s), the header has 2",
            b"k,v\nx,1,extra\n": "line 2 has 3 field(s), the header has 2",
            b'k,note\nx,"never closed\n': "a quoted field without its closing quote (line 2)",
            b'k,note\nx,"closed"late\n': "unexpected character after a closing quote (line 2)",
            b'k,note\nx,in"side\n': "a double quote inside an unquoted field",
            b"k,k\nx,y\n": "column 'k' appears twice in the header",
            b"k,,v\nx,,1\n": "empty column name in the header",
            b"": "the body is empty",
            b"\xff\xfe": "the body is not UTF-8",
        }
        for body, message in cases.items():
            err = _error(h.post("/kv", content=body, headers=CSV), 400, "PGRST102")
            assert message in err["message"] and err["message"].startswith("Invalid CSV"), (body, err)
        err = _error(h.post("/kv", content=b"k,nope\nx,1\n", headers=CSV), 400, "PGRST204")
        assert err["message"] == "Could not find the 'nope' column of 'kv' in the schema cache"
        # functions take JSON only
        _error(h.post("/rpc/add", content=b"a,b\n1,2\n", headers=CSV), 400, "PGRST102")
    assert sql(reset, "select count(*) from rest_fixture.kv")[0][0] == 0


def test_csv_patch_and_put_take_one_row(reset) -> None:
    with raw(reset, reset.service_key) as h:
        h.post("/kv", json=[{"k": "a", "v": 1}, {"k": "b", "v": 2}])
        r = h.patch("/kv?k=eq.a", content=b'v,note\n10,"patched, by csv"\n', headers=REP)
        assert r.status_code == 200 and r.json() == [{"k": "a", "v": 10, "note": "patched, by csv"}]
        r = h.patch("/kv?k=eq.b", content=b"note\n\n", headers=REP)  # a blank line is not a row
        err = _error(r, 400, "PGRST102")
        assert err["message"] == "Invalid CSV: a PATCH body must have exactly one row after the header, got 0"
        err = _error(h.patch("/kv?k=eq.b", content=b"v\n1\n2\n", headers=CSV), 400, "PGRST102")
        assert "exactly one row" in err["message"] and "got 2" in err["message"]
        r = h.patch("/kv?k=eq.b", content=b"note\n\"\"\n", headers=REP)
        assert r.json() == [{"k": "b", "v": 2, "note": ""}]
        r = h.put("/kv?k=eq.c", content=b"k,v,note\nc,3,NULL\n", headers=REP)
        assert r.status_code == 201 and r.json() == [{"k": "c", "v": 3, "note": None}]
        _error(h.put("/kv?k=eq.c", content=b"k,v\nzz,3\n", headers=CSV), 400, "PGRST115")
    rows = sql(reset, "select k, v, note from rest_fixture.kv order by k")
    assert [tuple(x) for x in rows] == [("a", 10, "patched, by csv"), ("b", 2, ""), ("c", 3, None)]


# --- spreading to-many embeds ---------------------------------------------------------------------

def test_spread_to_many_aliases_order_and_empty(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/posts?select=title,...comments(cid:id,content)&comments.order=id.desc&order=id")
        assert r.status_code == 200, r.text
        assert r.json() == [
            {"title": "Hello world", "cid": [2, 1], "content": ["Agreed", "Nice post"]},
            {"title": "Second post", "cid": [3], "content": ["Meow"]},
            {"title": "Bob draft", "cid": [], "content": []},
            {"title": "Bob public", "cid": [4], "content": ["Good one"]},
        ]
        # filters and limit of the embed apply inside the arrays; the parents stay
        r = h.get("/posts?select=id,...comments(content)&comments.content=neq.Agreed&comments.limit=1&order=id")
        assert r.json() == [{"id": 1, "content": ["Nice post"]}, {"id": 2, "content": ["Meow"]},
                            {"id": 3, "content": []}, {"id": 4, "content": ["Good one"]}]
        # !inner drops parents without related rows; embed=is.null keeps only those
        r = h.get("/posts?select=id,...comments!inner(content)&order=id")
        assert [x["id"] for x in r.json()] == [1, 2, 4]
        r = h.get("/posts?select=id,...comments(content)&comments=is.null")
        assert r.json() == [{"id": 3, "content": []}]
        r = h.get("/posts?select=id,...comments(content)&comments=not.is.null&order=id")
        assert [x["id"] for x in r.json()] == [1, 2, 4]
        # a to-many spread from the other side: users → posts, with the related count
        r = h.get("/users?select=username,...posts!author_id(titles:title,...comments(count))"
                  "&posts.order=id&order=username")
        assert r.status_code == 400 and r.json()["code"] == "PGRST127"  # nested to-many in to-many
        r = h.get("/users?select=username,...posts!author_id(count)&order=username")
        assert r.json() == [{"username": "alice", "count": 2}, {"username": "bob", "count": 2},
                            {"username": "carol", "count": 0}]


def test_spread_to_many_many_to_many_and_nesting(rest_server) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get("/posts?select=id,...tags(tag_names:name)&tags.order=name&order=id")
        assert r.json() == [{"id": 1, "tag_names": ["postgres", "python"]}, {"id": 2, "tag_names": ["postgres"]},
                            {"id": 3, "tag_names": []}, {"id": 4, "tag_names": ["rust"]}]
        r = h.get("/tags?select=name,...posts(post_ids:id)&posts.order=id.desc&order=id")
        assert r.json() == [{"name": "python", "post_ids": [1]}, {"name": "postgres", "post_ids": [2, 1]},
                            {"name": "rust", "post_ids": [4]}]
        # a plain embed inside a to-many spread: an array of its objects; a to-one spread: an array
        # of its column's values
        r = h.get("/posts?select=id,...comments(by:users(username),...users(who:username))"
                  "&comments.order=id&id=eq.1")
        assert r.json() == [{"id": 1, "by": [{"username": "bob"}, {"username": "carol"}],
                             "who": ["bob", "carol"]}]
        # a to-one spread holding a to-many spread: comments → their post's tag names
        r = h.get("/comments?select=id,...posts(...tags(name))&id=eq.3")
        assert r.json() == [{"id": 3, "name": ["postgres"]}]
        # nested to-many spreads inside a to-many spread stay unsupported, clearly
        r = h.get("/users?select=username,...posts!author_id(...comments(id))")
        body = r.json()
        assert r.status_code == 400 and body["code"] == "PGRST127" and body["message"] == "Feature not implemented"
        assert "inside another spread to-many" in body["details"]
        # ordering the parents by a to-many embed is still refused
        r = h.get("/posts?select=id,...comments(cid:id)&order=comments(id)")
        assert r.status_code == 400 and r.json()["code"] == "PGRST118"


def test_spread_to_many_through_clients_and_writes(reset) -> None:
    c = supa(reset, reset.service_key)
    res = c.table("posts").select("title, ...comments(id)").order("id").execute()
    assert res.data == [{"title": "Hello world", "id": [1, 2]}, {"title": "Second post", "id": [3]},
                        {"title": "Bob draft", "id": []}, {"title": "Bob public", "id": [4]}]
    res = c.table("posts").select("id, ...tags(name)").eq("id", 1).single().execute()
    assert sorted(res.data["name"]) == ["postgres", "python"] and res.data["id"] == 1
    # RLS decides what goes into the arrays: anon sees only published posts of bob
    res = supa(reset).table("users").select("username, ...posts!author_id(title)").eq("username", "bob").execute()
    assert res.data == [{"username": "bob", "title": ["Bob public"]}]
    # the representation of a write spreads too
    res = c.table("posts").insert({"author_id": ALICE, "title": "fresh"}).execute()
    new_id = res.data[0]["id"]
    with raw(reset, reset.service_key) as h:
        h.post("/comments", json=[{"post_id": new_id, "user_id": BOB, "content": "first!"}])
        r = h.patch(f"/posts?id=eq.{new_id}&select=title,...comments(said:content)", json={"title": "edited"},
                    headers={"Prefer": "return=representation"})
        assert r.json() == [{"title": "edited", "said": ["first!"]}]
        r = h.post("/posts?select=title,...comments(said:content)", json={"author_id": ALICE, "title": "lonely"},
                   headers={"Prefer": "return=representation"})
        assert r.status_code == 201 and r.json() == [{"title": "lonely", "said": []}]
        # CSV output of a spread read carries the arrays as JSON text
        r = h.get("/posts?select=id,...comments(cid:id)&id=eq.1", headers={"Accept": "text/csv"})
        assert r.status_code == 200 and r.text.splitlines()[0] == "id,cid" and r.text.splitlines()[1] == "1,\"[1, 2]\""


@pytest.mark.parametrize("select", ["id,...comments(x)", "id,...nothere(id)"])
def test_spread_to_many_bad_names(rest_server, select: str) -> None:
    with raw(rest_server, rest_server.service_key) as h:
        r = h.get(f"/posts?select={select}")
        assert r.status_code == 400 and r.json()["code"] in ("42703", "PGRST200")


def test_csv_large_body_parsed_off_the_event_loop(reset) -> None:
    # > 64 KiB: parsed in a worker thread; the rows still all arrive, in order
    lines = ["k,v,note"] + [f'k{i:05d},{i},"note, {i}\nline two"' for i in range(4000)]
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 64 * 1024
    with raw(reset, reset.service_key) as h:
        r = h.post("/kv", content=body, headers={**CSV, "Prefer": "count=exact"})
        assert r.status_code == 201 and r.headers["content-range"] == "*/4000"
        bad = body + b'k9,1,"unterminated\n'
        err = _error(h.post("/kv", content=bad, headers=CSV), 400, "PGRST102")
        assert err["message"] == "Invalid CSV: a quoted field without its closing quote (line 8002)"
    rows = sql(reset, "select k, v, note from rest_fixture.kv order by k")
    assert len(rows) == 4000 and tuple(rows[1234]) == ("k01234", 1234, "note, 1234\nline two")


# --- the parser alone -----------------------------------------------------------------------------

def test_parse_csv_body_rules() -> None:
    assert parse_csv_body(b'\xef\xbb\xbfa,b\r\n1,\r\n"",NULL\r"x\r\ny",2') == [
        {"a": "1", "b": None}, {"a": "", "b": None}, {"a": "x\r\ny", "b": "2"}]
    assert parse_csv_body(b"a\n\nNULL\n\n") == [{"a": None}]  # blank lines are skipped, NULL is a row
    assert parse_csv_body(b'a,b\n1,') == [{"a": "1", "b": None}]  # no final line break needed
    with pytest.raises(ApiError) as info:
        parse_csv_body(b'a,b\n"x\ny",2\n3\n')
    assert info.value.code == "PGRST102" and info.value.message == \
        "Invalid CSV: line 4 has 1 field(s), the header has 2"  # lines counted inside quoted fields


_TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\tNUL\u00e9')), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=4).flatmap(
    lambda width: st.lists(st.lists(_TEXT, min_size=width, max_size=width), min_size=0, max_size=6)))
def test_parse_csv_body_round_trips_quoted_fields(rows: list[list[str]]) -> None:
    width = len(rows[0]) if rows else 1
    names = [f"c{i}" for i in range(width)]
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(names)
    writer.writerows(rows)
    assert parse_csv_body(out.getvalue().encode()) == [dict(zip(names, r)) for r in rows]
