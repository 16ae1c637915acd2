"""Dynamic-table benchmark (not a test): what /db/v1 costs on top of the engine and the database.

    python3 bench/tables.py [--requests 3000] [--concurrency 10]

Starts its own ownbase (embedded PostgreSQL in a temporary directory, the dynamic database also
exposed to /rest/v1 so both paths can be compared on the same table), creates a table through the
API with a user token, fills it, then measures at the same concurrency:

* GET one row by id: /db/v1/…/rows/{id}  vs  /rest/v1/items?id=eq.… (Accept-Profile)  vs  the same
  statement with the same role switch and claims through asyncpg directly;
* POST one row: /db/v1 (values validated against the spec) vs /rest/v1;
* a 1,000-row bulk insert: /db/v1 vs /rest/v1 vs asyncpg executemany under the same role;
* table creation (DDL + registry + RLS policies + schema reload) per second.

Prints req/s, p50/p99 latency and the ratios side by side. General rate limits are disabled for
the run (one client address); everything else uses the shipped defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

from _load import Result, merge, run_load, start_server  # noqa: E402 - bench/ is on sys.path when run as a script
from ownbase.tables.spec import SCHEMA_PREFIX

DB = "benchdb"
SCHEMA = SCHEMA_PREFIX + DB  # the PostgreSQL schema of database DB (see docs/rest.md)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ownbase-bench-tables-"))
    proc, url, info = start_server(tmp, {"OWNBASE_DB_SCHEMAS": f"public,{SCHEMA}"})
    try:
        keys = info["keys"]
        sub = str(uuid.uuid4())
        claims = {"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + 7200}
        token = keys.sign(claims)
        headers = {"apikey": info["anon_key"], "Authorization": f"Bearer {token}"}
        conn_limit = aiohttp.TCPConnector(limit=args.concurrency * 2)
        async with aiohttp.ClientSession(connector=conn_limit, headers=headers) as http:
            spec = {"name": "items", "columns": [{"name": "title", "type": "text", "nullable": False},
                                                 {"name": "qty", "type": "integer", "default": 1},
                                                 {"name": "tags", "type": "text[]"}]}
            async with http.post(f"{url}/db/v1/{DB}/tables", json=spec) as r:
                assert r.status == 201, await r.text()
            seed = [{"title": f"item {i}", "qty": i, "tags": ["a", "b"]} for i in range(1000)]
            async with http.post(f"{url}/db/v1/{DB}/tables/items/rows", json=seed,
                                 headers={"Prefer": "return=representation"}) as r:
                assert r.status == 201, await r.text()
                ids = [row["id"] for row in await r.json()]
            # Warm both paths (schema cache, pools).
            for _ in range(50):
                async with http.get(f"{url}/db/v1/{DB}/tables/items/rows/{ids[0]}") as r:
                    await r.read()
                async with http.get(f"{url}/rest/v1/items?id=eq.{ids[0]}", headers={"Accept-Profile": SCHEMA}) as r:
                    await r.read()

            async def db_get(i: int) -> bool:
                async with http.get(f"{url}/db/v1/{DB}/tables/items/rows/{ids[i % len(ids)]}") as r:
                    await r.read()
                    return r.status == 200

            async def rest_get(i: int) -> bool:
                async with http.get(f"{url}/rest/v1/items?id=eq.{ids[i % len(ids)]}",
                                    headers={"Accept-Profile": SCHEMA, "Accept": "application/vnd.pgrst.object+json"}) as r:
                    await r.read()
                    return r.status == 200

            pool = await asyncpg.create_pool(info["db_url"], min_size=args.concurrency, max_size=args.concurrency)
            claims_json = json.dumps(claims)
            select = (f'select to_jsonb(t) from "{SCHEMA}".items t where id = $1::uuid')

            async def direct_get(i: int) -> bool:
                async with pool.acquire() as conn:
                    async with conn.transaction():
                        await conn.execute("select set_config('role', 'authenticated', true), "
                                           "set_config('request.jwt.claims', $1, true)", claims_json)
                        row = await conn.fetchval(select, ids[i % len(ids)])
                return row is not None

            async def db_post(i: int) -> bool:
                async with http.post(f"{url}/db/v1/{DB}/tables/items/rows", json={"title": f"p{i}", "qty": i}) as r:
                    await r.read()
                    return r.status == 201

            async def rest_post(i: int) -> bool:
                async with http.post(f"{url}/rest/v1/items", json={"title": f"r{i}", "qty": i},
                                     headers={"Content-Profile": SCHEMA, "Prefer": "return=representation"}) as r:
                    await r.read()
                    return r.status == 201

            n, c = args.requests, args.concurrency
            print(f"\nownbase /db/v1 benchmark: {n} requests per row, {c} concurrent clients\n")
            # Interleaved rounds, so load from other processes on the machine hits all three alike.
            parts: dict[str, list[Result]] = {"direct": [], "rest": [], "dyn": []}
            for _ in range(args.rounds):
                parts["direct"].append(await run_load("direct", n // args.rounds, c, direct_get))
                parts["rest"].append(await run_load("rest", n // args.rounds, c, rest_get))
                parts["dyn"].append(await run_load("dyn", n // args.rounds, c, db_get))
            direct = merge("GET 1 row: asyncpg direct (same role+claims)", parts["direct"])
            rest = merge("GET 1 row: /rest/v1?id=eq.<uuid>", parts["rest"])
            dyn = merge("GET 1 row: /db/v1/…/rows/<uuid>", parts["dyn"])
            print("ratios against the first line of each group")
            print(direct.line())
            print(rest.line(direct))
            print(dyn.line(direct))
            print(f"  /db/v1 vs /rest/v1 on the same row: {dyn.rate / rest.rate:.2f}x throughput, "
                  f"+{dyn.p50 - rest.p50:.2f} ms p50")

            ins: dict[str, list[Result]] = {"rest": [], "dyn": []}
            for _ in range(args.rounds):
                ins["rest"].append(await run_load("rest", n // 2 // args.rounds, c, rest_post))
                ins["dyn"].append(await run_load("dyn", n // 2 // args.rounds, c, db_post))
            rest_ins = merge("POST 1 row: /rest/v1", ins["rest"])
            dyn_ins = merge("POST 1 row: /db/v1 (validated)", ins["dyn"])
            print(rest_ins.line())
            print(dyn_ins.line(rest_ins))

            bulk = [{"title": f"bulk {i}", "qty": i, "tags": ["x"]} for i in range(1000)]

            async def db_bulk(i: int) -> bool:
                async with http.post(f"{url}/db/v1/{DB}/tables/items/rows", json=bulk,
                                     headers={"Prefer": "return=minimal"}) as r:
                    await r.read()
                    return r.status == 201

            async def rest_bulk(i: int) -> bool:
                async with http.post(f"{url}/rest/v1/items", json=bulk,
                                     headers={"Content-Profile": SCHEMA, "Prefer": "return=minimal"}) as r:
                    await r.read()
                    return r.status == 201

            records = [(f"bulk {i}", i, ["x"]) for i in range(1000)]

            async def direct_bulk(i: int) -> bool:
                async with pool.acquire() as conn:
                    async with conn.transaction():
                        await conn.execute("select set_config('role', 'authenticated', true), "
                                           "set_config('request.jwt.claims', $1, true)", claims_json)
                        await conn.executemany(f'insert into "{SCHEMA}".items(title, qty, tags) values ($1, $2, $3)', records)
                return True

            bulks: dict[str, list[Result]] = {"direct": [], "rest": [], "dyn": []}
            for _ in range(max(5, n // 300)):
                bulks["direct"].append(await run_load("direct", 1, 1, direct_bulk))
                bulks["rest"].append(await run_load("rest", 1, 1, rest_bulk))
                bulks["dyn"].append(await run_load("dyn", 1, 1, db_bulk))
            d_bulk = merge("1,000-row insert: asyncpg executemany", bulks["direct"])
            r_bulk = merge("1,000-row insert: /rest/v1", bulks["rest"])
            b_bulk = merge("1,000-row insert: /db/v1 (validated)", bulks["dyn"])
            print(d_bulk.line())
            print(r_bulk.line(d_bulk))
            print(b_bulk.line(d_bulk))
            await pool.close()

            async def create_table(i: int) -> bool:
                body = {"name": f"t{i}", "columns": [{"name": "v", "type": "text"}, {"name": "n", "type": "int"}]}
                async with http.post(f"{url}/db/v1/{DB}/tables", json=body) as r:
                    await r.read()
                    return r.status == 201

            ddl = await run_load("create table (DDL + RLS + registry + reload)", 40, 1, create_table)
            print(ddl.line())
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
