"""The dashboard in a real browser: Playwright driving Debian's chromium (headless), through each page.

Screenshots of every page land in tests/dashboard/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from PIL import Image

from tests.conftest import ServerHandle
from tests.conftest import sql as _sql
from tests.dashboard.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"

TAG = uuid.uuid4().hex[:6]
AUTHORS, POSTS, RT = f"authors_{TAG}", f"posts_{TAG}", f"rt_items_{TAG}"


@pytest.fixture(scope="module")
def page(dash: ServerHandle) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: the test command installs it (scripts/test)")

    SHOTS.mkdir(exist_ok=True)
    email = f"browser-{TAG}@example.com"
    from tests.dashboard.conftest import create_admin

    assert create_admin(dash, email).returncode == 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        # bypass_csp: Playwright evaluates its wait predicates with eval(), which the page's CSP forbids.
        context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dash.url)
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        pg.goto(dash.url + "/dashboard/")
        assert pg.url.endswith("/dashboard/login")  # no cookie: the login page
        shot(pg, "login")
        pg.fill("input[name=email]", email)
        pg.fill("input[name=password]", PASSWORD)
        pg.click("button[type=submit]")
        pg.wait_for_selector("body[data-ready=tables]")
        yield pg
        context.close()
        browser.close()


def sql(handle: ServerHandle, statement: str, *args: Any) -> Any:
    """tests.conftest.sql from another thread: Playwright's sync API keeps an event loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_sql, handle, statement, *args).result()


def shot(pg: Any, name: str) -> None:
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def goto(pg: Any, section: str) -> None:
    pg.evaluate("document.body.dataset.ready = ''")
    pg.evaluate(f"""location.hash === '#/{section}' ? document.dispatchEvent(new Event('dashboard:reload'))
                                                     : (location.hash = '#/{section}')""")
    pg.wait_for_selector(f"body[data-ready={section}]")


def fill_column(pg: Any, index: int, name: str, type: str, *, default: str = "", ref: str = "") -> None:
    row = pg.locator("#new-columns .col-spec").nth(index)
    row.locator(".c-name").fill(name)
    row.locator(".c-type").fill(type)
    if default:
        row.locator(".c-default").select_option(default)
    if ref:
        row.locator(".c-ref").fill(ref)


def create_table(pg: Any, name: str, columns: list[dict[str, str]]) -> None:
    goto(pg, "tables")
    pg.click("#new-table")
    pg.fill("#nt-name", name)
    for i, col in enumerate(columns):
        pg.click("text=+ column")
        fill_column(pg, i + 1, **col)
    pg.click("#nt-preview")
    pg.wait_for_function("document.querySelector('#ddl-preview').textContent.includes('create table')")
    pg.click("dialog button.primary")
    pg.wait_for_selector(f"[data-table='public.{name}']")


def test_create_table_with_fk_and_policy_refuses_anon(page: Any, dash: ServerHandle) -> None:
    create_table(page, AUTHORS, [{"name": "user_id", "type": "uuid"}])
    create_table(page, POSTS, [{"name": "author_id", "type": "bigint", "ref": f"{AUTHORS}.id"},
                               {"name": "data", "type": "jsonb"}, {"name": "owner", "type": "uuid"}])
    fk = sql(dash, "select confrelid::regclass::text as ref from pg_constraint where contype = 'f'"
                   " and conrelid = $1::regclass", f"public.{POSTS}")
    assert [r["ref"] for r in fk] == [AUTHORS]
    page.click(f"[data-table='public.{POSTS}']")
    page.wait_for_selector("#policy-template")
    shot(page, "table-editor")
    # Template "users insert their own rows" on the owner column, SQL shown before it runs.
    page.select_option("#policy-template", "own_rows_insert")
    page.select_option("#policy-column", "owner")
    page.wait_for_function("document.querySelector('#policy-sql').textContent.includes('with check')")
    assert '"owner"' in page.text_content("#policy-sql")
    page.click("#policy-create")
    page.wait_for_selector("text=Users insert their own rows")
    page.select_option("#policy-template", "read_all")
    page.wait_for_function("document.querySelector('#policy-sql').textContent.includes('for select')")
    page.click("#policy-create")
    page.wait_for_selector("text=Everyone can read")
    shot(page, "policies")
    from supabase import create_client

    anon = create_client(dash.url, dash.anon_key)
    sql(dash, f'insert into public."{AUTHORS}" (user_id) values (gen_random_uuid())')
    with pytest.raises(Exception) as refused:
        anon.table(POSTS).insert({"data": {"x": 1}, "owner": str(uuid.uuid4())}).execute()
    assert "42501" in str(refused.value) or "row-level security" in str(refused.value)
    sql(dash, f'insert into public."{POSTS}" (author_id, data) select id, \'{{"a": 1}}\' from public."{AUTHORS}"')
    assert len(anon.table(POSTS).select("*").execute().data) == 1  # the read policy lets anon read


def test_rls_banner_on_table_without_rls(page: Any, dash: ServerHandle) -> None:
    sql(dash, f'create table public."{RT}" (id bigint generated by default as identity primary key, label text);'
              f' grant select on public."{RT}" to anon; alter publication supabase_realtime add table public."{RT}"')
    goto(page, "tables")
    page.click(f"[data-table='public.{RT}']")
    assert "Row level security is off" in page.text_content("#rls-banner")
    # Insert, duplicate and delete rows from the grid.
    page.click("text=Insert row")
    page.fill("#row-editor input[name=label]", "first")
    page.click("dialog button.primary")
    page.wait_for_selector("td[data-col=label]:has-text('first')")
    page.click("button[aria-label='Duplicate row']")
    page.click("dialog button.primary")
    page.wait_for_function("document.querySelectorAll('td[data-col=label]').length === 2")
    assert [r["label"] for r in sql(dash, f'select label from public."{RT}" order by id')] == ["first", "first"]
    page.once("dialog", lambda d: d.accept())
    page.locator("button[aria-label='Delete row']").first.click()
    page.wait_for_function("document.querySelectorAll('td[data-col=label]').length === 1")
    assert sql(dash, f'select count(*) as n from public."{RT}"')[0]["n"] == 1
    sql(dash, f'delete from public."{RT}"')


def test_edit_jsonb_cell(page: Any, dash: ServerHandle) -> None:
    goto(page, "tables")
    page.click(f"[data-table='public.{POSTS}']")
    page.wait_for_selector(f"h3:has-text('{POSTS}')")
    shot(page, "before-edit")
    cell = page.locator("td[data-col=data]").first
    cell.dblclick()
    page.fill("#cell-editor textarea", '{"b": [1, 2], "s": "x"}')
    page.click("dialog button.primary")
    page.wait_for_selector('td[data-col=data]:has-text("[1,2]")')
    stored = sql(dash, f'select data::text from public."{POSTS}"')[0]["data"]
    assert json.loads(stored) == {"b": [1, 2], "s": "x"}


def test_sql_error_position_explain_confirm_and_snippet(page: Any, dash: ServerHandle) -> None:
    goto(page, "sql")
    page.fill("#sql-input", "select 1\nfrom no_such_table_xyz")
    page.click("#sql-run")
    err = page.wait_for_selector("#sql-error").text_content()
    assert "no_such_table_xyz" in err and "line 2, column 6, position 15" in err
    shot(page, "sql-error")
    page.fill("#sql-input", f'select count(*) from public."{POSTS}"')
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#sql-status")
    page.click("#sql-explain")
    assert "Scan" in page.wait_for_selector("#sql-plan").text_content()
    page.fill("#sql-input", "create table tmp_drop_me (x int); drop table tmp_drop_me")
    page.click("#sql-run")
    assert "DROP" in page.wait_for_selector("#sql-confirm").text_content()
    assert sql(dash, "select to_regclass('tmp_drop_me') is null as gone")[0]["gone"]  # nothing ran yet
    page.click("#sql-confirm-run")
    page.wait_for_selector("#sql-status")
    page.once("dialog", lambda d: d.accept("count posts"))
    page.fill("#sql-input", "select 42 as answer")
    page.click("#sql-save")
    page.wait_for_selector("#snippets >> text=count posts")
    shot(page, "sql")


def test_ban_user_refuses_sign_in(page: Any, dash: ServerHandle) -> None:
    email = f"banme-{TAG}@example.com"
    admin = dash.client(dash.service_key)
    assert admin.post("/auth/v1/admin/users", json={"email": email, "password": "secret-pass-1",
                                                      "email_confirm": True}).status_code == 200
    signin = {"email": email, "password": "secret-pass-1"}
    assert dash.client().post("/auth/v1/token?grant_type=password", json=signin).status_code == 200
    goto(page, "users")
    page.fill("#user-search", email)
    page.press("#user-search", "Enter")
    page.click(f"[data-ban='{email}']")
    page.wait_for_selector(f"[data-ban='{email}']:has-text('Unban')")
    shot(page, "users")
    refused = dash.client().post("/auth/v1/token?grant_type=password", json=signin)
    assert refused.status_code == 400 and "banned" in refused.text.lower()


def test_upload_and_preview(page: Any, dash: ServerHandle, tmp_path: Path) -> None:
    bucket = f"pics-{TAG}"
    r = dash.client(dash.service_key).post("/storage/v1/bucket", json={"name": bucket, "id": bucket})
    assert r.status_code == 200, r.text
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
    png = tmp_path / "red.png"
    png.write_bytes(buf.getvalue())
    goto(page, "storage")
    page.click(f"[data-bucket='{bucket}']")
    page.set_input_files("#upload-input", str(png))
    page.wait_for_selector("[data-preview='red.png']")
    stored = dash.client(dash.service_key).get(f"/storage/v1/object/{bucket}/red.png")
    assert stored.content == buf.getvalue()
    page.click("[data-preview='red.png']")
    page.wait_for_function("document.querySelector('#preview-img') && document.querySelector('#preview-img').naturalWidth === 40")
    shot(page, "storage")


def test_realtime_inspector_sees_insert(page: Any, dash: ServerHandle) -> None:
    goto(page, "realtime")
    page.fill("#rt-table", RT)
    page.click("#rt-join")
    # The server's "Subscribed to PostgreSQL" system message: changes from now on are delivered.
    page.wait_for_function("document.querySelector('#rt-log').textContent.includes('Subscribed to PostgreSQL')")
    sql(dash, f"insert into public.\"{RT}\" (label) values ('hello-{TAG}')")
    page.wait_for_function(f"document.querySelector('#rt-log').textContent.includes('hello-{TAG}')")
    page.fill("#rt-message", '{"ping": "pong-' + TAG + '"}')
    page.click("#rt-send")
    page.wait_for_function(f"document.querySelector('#rt-log').textContent.includes('pong-{TAG}')")
    shot(page, "realtime")


def test_copy_api_snippet_and_run_it(page: Any, dash: ServerHandle) -> None:
    goto(page, "api")
    page.click(f"[data-path='/{POSTS}']")
    page.click("[data-copy=snippet-curl]")
    page.wait_for_selector("#toast >> text=Copied")
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet.startswith("curl ") and dash.anon_key in snippet
    shot(page, "api-docs")
    assert shutil.which("curl"), "curl is needed to run the copied snippet"
    out = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, timeout=30)
    rows = json.loads(out.stdout)
    assert isinstance(rows, list) and rows and rows[0]["data"] == {"b": [1, 2], "s": "x"}


def test_logs_and_settings_pages(page: Any, dash: ServerHandle) -> None:
    goto(page, "logs")
    page.fill("#log-q", POSTS)
    page.press("#log-q", "Enter")
    page.wait_for_selector(f"#log-rows td[data-col=path]:has-text('{POSTS}')")
    shot(page, "logs")
    goto(page, "settings")
    assert dash.service_key not in page.content()
    page.click("#reveal-key")
    page.wait_for_function(f"document.querySelector('#service-key').textContent === {json.dumps(dash.service_key)}")
    assert "0600" in page.content() and "OWNBASE_AUTH_AUTOCONFIRM" in page.content()
    shot(page, "settings")
    for dark in (True,):
        page.emulate_media(color_scheme="dark" if dark else "light")
        goto(page, "tables")
        shot(page, "tables-dark")
    assert httpx.get(dash.url + "/dashboard/static/app.js").status_code == 200
