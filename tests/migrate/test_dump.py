"""The pg_dump filter: entries kept, rewritten or dropped by their table-of-contents type."""

from __future__ import annotations

from ownbase.migrate import dump

SAMPLE = """--
-- PostgreSQL database dump
--

\\restrict abc123

SET statement_timeout = 0;
SET transaction_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;


--
-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA public IS 'standard public schema';


--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.f() RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
GRANT SELECT ON TABLE public.t TO supabase_admin;
end $$;


--
-- Name: TABLE t; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON TABLE public.t TO anon;
GRANT ALL ON TABLE public.t TO supabase_admin;
REVOKE ALL ON FUNCTION public.f() FROM PUBLIC;
GRANT SELECT ON TABLE public.t TO "service_role" WITH GRANT OPTION;


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: postgres
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO anon;


\\unrestrict abc123
"""


def test_build_filters_by_entry_type() -> None:
    ddl, acls, dropped = dump.build(SAMPLE)
    assert "\\restrict" not in ddl and "transaction_timeout" not in ddl
    assert "CREATE SCHEMA IF NOT EXISTS public;" in ddl
    assert "COMMENT ON SCHEMA public" not in ddl
    # a function body that happens to contain a GRANT line is DDL, not an ACL entry
    assert "GRANT SELECT ON TABLE public.t TO supabase_admin;" in ddl
    assert "ALTER DEFAULT PRIVILEGES" not in ddl
    assert acls == ["GRANT ALL ON TABLE public.t TO anon;", "REVOKE ALL ON FUNCTION public.f() FROM PUBLIC;",
                    'GRANT SELECT ON TABLE public.t TO "service_role" WITH GRANT OPTION;']
    assert dropped == {"extension": 0, "default acl": 1, "acl for other roles": 1}


def test_password_goes_to_the_environment_not_the_command_line() -> None:
    url, env = dump._without_password("postgresql://postgres:p%40ss@db.ref.supabase.co:5432/postgres?sslmode=require")
    assert url == "postgresql://postgres@db.ref.supabase.co:5432/postgres?sslmode=require"
    assert env == {"PGPASSWORD": "p@ss"}
    assert dump._without_password("postgresql://postgres@127.0.0.1/x") == ("postgresql://postgres@127.0.0.1/x", {})
