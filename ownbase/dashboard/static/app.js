// ownbase dashboard: plain ES module, no build step. Every value from the server is put into the
// page as text (h() never parses HTML), so table data cannot inject markup.
const meta = (n) => document.querySelector(`meta[name="${n}"]`).content;
const CSRF = meta("csrf-token"), API_URL = meta("api-url"), ANON = meta("anon-key");
const view = document.getElementById("view");

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false)
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return el;
}
function toast(msg) {
  const t = h("div", {}, msg); document.getElementById("toast").append(t); setTimeout(() => t.remove(), 4000);
}
async function api(path, opts = {}) {
  const init = { method: opts.method || (opts.body !== undefined ? "POST" : "GET"), headers: {"x-csrf-token": CSRF} };
  if (opts.body !== undefined) { init.body = JSON.stringify(opts.body); init.headers["content-type"] = "application/json"; }
  const r = await fetch("/dashboard/api/" + path, init);
  if (r.status === 401) { location.href = "/dashboard/login"; throw new Error("signed out"); }
  const text = await r.text();
  let data; try { data = text ? JSON.parse(text) : {}; } catch { data = {raw: text}; }
  return {ok: r.ok, status: r.status, data};
}
const proxy = (service, path, opts) => api(`proxy/${service}/${path}`, opts);
const errText = (d) => d.message || d.msg || d.error_description || (d.error && (d.error.message || d.error)) || JSON.stringify(d);
const show = (v) => v === null || v === undefined ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v);
const qs = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== "" && v !== undefined && v !== null)).toString();

function grid(columns, rows, {onCell, actions} = {}) {
  return h("table", {class: "grid"},
    h("thead", {}, h("tr", {}, actions ? h("th", {}, "") : null, columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((row, i) => h("tr", {},
      actions ? h("td", {}, actions(row, i)) : null,
      columns.map((c, j) => {
        const v = Array.isArray(row) ? row[j] : row[c];
        const td = h("td", {title: show(v), "data-col": c}, show(v));
        if (onCell) { td.classList.add("editable"); td.tabIndex = 0; td.addEventListener("dblclick", () => onCell(row, c, td));
          td.addEventListener("keydown", (e) => { if (e.key === "Enter") onCell(row, c, td); }); }
        return td;
      })))));
}

function modal(title, body, buttons) {
  const d = h("dialog", {}, h("h3", {}, title), body, h("div", {class: "row"}, buttons.map(([label, fn, cls]) =>
    h("button", {class: cls, onclick: async () => { if ((await fn()) !== false) { d.close(); d.remove(); } }}, label)),
    h("button", {onclick: () => { d.close(); d.remove(); }}, "Cancel")));
  d.addEventListener("close", () => d.remove());  // Esc closes too
  document.body.append(d); d.showModal(); return d;
}

// --- tables -------------------------------------------------------------------------------------
const state = {schema: "public", table: null, offset: 0, limit: 50, order: "", filters: []};

async function tablesView() {
  const {data} = await api("tables");
  let lastSchema = null;
  const list = h("ul", {id: "table-list"}, data.tables.flatMap((t) => [t.schema !== lastSchema ? h("li", {class: "muted small"}, (lastSchema = t.schema) + (t.exposed ? " (API)" : "")) : null, h("li", {}, h("button", {
    "data-table": `${t.schema}.${t.name}`, onclick: () => { Object.assign(state, {schema: t.schema, table: t.name, offset: 0, order: "", filters: []}); tableDetail(); }},
    `${t.name} `, h("span", {class: "muted small"}, `~${t.estimate}`), t.exposed && t.kind === "r" && !t.rls ? h("span", {class: "badge off"}, "no RLS") : null))]));
  view.replaceChildren(h("h2", {}, "Tables"), h("div", {class: "cols"},
    h("div", {class: "side"}, h("button", {class: "primary", id: "new-table", onclick: newTableDialog}, "New table"), list),
    h("div", {id: "table-detail", style: "flex:1;min-width:0"}, h("p", {class: "muted"}, "Pick a table."))));
  if (state.table) tableDetail();
}

let renderSeq = 0;
async function tableDetail() {
  const seq = ++renderSeq;  // a slower, older render must not overwrite a newer one
  const box = document.getElementById("table-detail");
  const {ok, data: info} = await api("table?" + qs({schema: state.schema, table: state.table}));
  if (!ok) { box.replaceChildren(h("p", {class: "error"}, errText(info))); return; }
  const params = new URLSearchParams(qs({schema: state.schema, table: state.table, limit: state.limit, offset: state.offset, order: state.order}));
  state.filters.forEach((f) => params.append("filter", f));
  const r = await api("rows?" + params);
  if (seq !== renderSeq || !box.isConnected) return;
  const cols = info.columns.map((c) => c.name);
  const pk = info.columns.filter((c) => c.primary_key).map((c) => c.name);
  const keyOf = (row) => pk.length ? Object.fromEntries(pk.map((k) => [k, row[k]])) : {_ctid: row._ctid};
  const filterInput = h("input", {id: "filter", placeholder: "column.op.value  e.g. age.gte.18 (Enter)", size: 40,
    onkeydown: (e) => { if (e.key === "Enter") { state.filters = e.target.value.split("&").map((s) => s.trim()).filter(Boolean); state.offset = 0; tableDetail(); } },
    value: state.filters.join(" & ")});
  const rowsBox = r.ok ? grid(cols, r.data.rows, {
    onCell: (row, c, td) => editCell(info, row, c, keyOf(row)),
    actions: (row) => h("span", {class: "row"},
      h("button", {title: "Duplicate", "aria-label": "Duplicate row", class: "small", onclick: () => insertRow(info, Object.fromEntries(info.columns.filter((c) => !c.primary_key && !c.generated).map((c) => [c.name, row[c.name]])))}, "Dup"),
      h("button", {title: "Delete", "aria-label": "Delete row", class: "danger small", onclick: async () => {
        if (!confirm("Delete this row?")) return;
        const d = await api("rows/delete", {body: {schema: state.schema, table: state.table, keys: [keyOf(row)]}});
        d.ok ? tableDetail() : toast(errText(d.data)); }}, "✕")),
  }) : h("p", {class: "error"}, errText(r.data));
  // Sorting: click a header.
  rowsBox.querySelectorAll?.("th[data-col], thead th").forEach((th) => {
    const c = th.textContent; if (!cols.includes(c)) return;
    th.tabIndex = 0; th.style.cursor = "pointer";
    const flip = () => { state.order = state.order === `${c}.asc` ? `${c}.desc` : `${c}.asc`; tableDetail(); };
    th.addEventListener("click", flip); th.addEventListener("keydown", (e) => e.key === "Enter" && flip());
    if (state.order.startsWith(c + ".")) th.append(state.order.endsWith("desc") ? " ▼" : " ▲");
  });
  const total = r.ok ? r.data.total : info.count;
  box.replaceChildren(...[
    h("h3", {}, `${state.schema}.${state.table}`, " ", h("span", {class: "muted small", id: "row-count"}, `${total ?? "?"} rows`)),
    info.exposed && info.kind === "r" && !info.rls ? h("div", {class: "banner", id: "rls-banner"}, "Row level security is off: anyone with the anon key can read and write every row. ",
      h("button", {onclick: () => runDdl("rls", {schema: state.schema, table: state.table, enabled: true})}, "Enable RLS")) : null,
    h("div", {class: "row"}, filterInput,
      h("button", {onclick: () => insertRow(info, {})}, "Insert row"),
      h("button", {disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - state.limit); tableDetail(); }}, "← Prev"),
      h("span", {class: "muted"}, `${state.offset + 1}–${state.offset + (r.ok ? r.data.rows.length : 0)}`),
      h("button", {disabled: !r.ok || state.offset + state.limit >= total, onclick: () => { state.offset += state.limit; tableDetail(); }}, "Next →")),
    rowsBox,
    h("h4", {}, "Columns"),
    grid(["name", "type", "not_null", "default", "primary_key", "references"], info.columns.map((c) => ({...c, references: c.ref_table ? `${c.ref_schema}.${c.ref_table}(${c.ref_column})` : ""}))),
    h("div", {class: "row"}, h("button", {onclick: () => alterDialog(info)}, "Alter table…"),
      info.rls ? h("button", {onclick: () => runDdl("rls", {schema: state.schema, table: state.table, enabled: false})}, "Disable RLS") : null),
    h("h4", {}, "Indexes"), grid(["name", "definition"], info.indexes),
    h("h4", {}, "Policies ", h("span", {class: "badge" + (info.rls ? "" : " off")}, info.rls ? "RLS on" : "RLS off")),
    grid(["name", "cmd", "roles", "qual", "with_check"], info.policies, {actions: (p) => h("button", {class: "danger", onclick: () => runDdl("drop_policy", {schema: state.schema, table: state.table, name: p.name})}, "Drop")}),
    policyEditor(info)].filter(Boolean));
}

async function runDdl(kind, spec) {
  const r = await api("ddl/" + kind, {body: spec});
  if (!r.ok) { toast(r.data.error ? errText(r.data.error) : errText(r.data)); return r; }
  toast("Done"); await tablesView(); return r;
}

function inputFor(col, value) {
  const v = value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value, null, 1) : String(value);
  if (col.type === "boolean") return h("select", {name: col.name}, ["", "true", "false"].map((o) => h("option", {value: o, selected: String(value) === o}, o || "NULL")));
  if (col.enum_values) return h("select", {name: col.name}, ["", ...col.enum_values].map((o) => h("option", {value: o, selected: value === o}, o || "NULL")));
  if (col.type === "json" || col.type === "jsonb" || col.type.endsWith("[]")) return h("textarea", {name: col.name, rows: 5, "data-kind": col.type.endsWith("[]") ? "array" : "json"}, v);
  if (col.type.startsWith("timestamp")) return h("input", {name: col.name, value: v, placeholder: "2026-01-31T12:00:00Z"});
  if (col.ref_table) {
    const inp = h("input", {name: col.name, value: v, list: `fk-${col.name}`});
    const dl = h("datalist", {id: `fk-${col.name}`});
    api("fk-options?" + qs({schema: state.schema, table: state.table, column: col.name})).then((r) => r.ok && dl.replaceChildren(...r.data.values.map((x) => h("option", {value: x}))));
    return h("span", {}, inp, dl);
  }
  return h("input", {name: col.name, value: v});
}

function readInput(el) {
  const raw = el.value;
  if (raw === "") return null;
  if (el.dataset.kind === "json" || el.dataset.kind === "array") { try { const j = JSON.parse(raw); return el.dataset.kind === "array" && Array.isArray(j) ? "{" + j.map((x) => JSON.stringify(x)).join(",") + "}" : j; } catch { return raw; } }
  return raw;
}

function editCell(info, row, c, key) {
  const col = info.columns.find((x) => x.name === c);
  const input = inputFor(col, row[c]);
  const field = input.querySelector?.("input") || input;
  modal(`Edit ${c} (${col.type})`, h("div", {id: "cell-editor"}, input), [["Save", async () => {
    const r = await api("rows/update", {body: {schema: state.schema, table: state.table, key, values: {[c]: readInput(field)}}});
    if (!r.ok) { toast(errText(r.data)); return false; }
    tableDetail();
  }, "primary"]]);
  field.focus();
}

function insertRow(info, preset) {
  const fields = info.columns.map((c) => h("label", {style: "display:block"}, `${c.name} `, h("span", {class: "muted small"}, c.type + (c.default ? ` = ${c.default}` : "")), inputFor(c, preset[c.name])));
  modal("Insert row", h("div", {id: "row-editor"}, fields), [["Save", async () => {
    const values = {};
    document.querySelectorAll("#row-editor [name]").forEach((el) => { const v = readInput(el); if (v !== null) values[el.name] = v; });
    const r = await api("rows/insert", {body: {schema: state.schema, table: state.table, values}});
    if (!r.ok) { toast(errText(r.data)); return false; }
    tableDetail();
  }, "primary"]]);
}

function columnRow() {
  return h("div", {class: "row col-spec"}, h("input", {class: "c-name", placeholder: "name", size: 12}),
    h("input", {class: "c-type", placeholder: "type (text, int8, jsonb…)", size: 16, list: "types"}),
    h("select", {class: "c-default"}, ["", "identity", "now()", "gen_random_uuid()", "auth.uid()", "true", "false", "'{}'::jsonb"].map((o) => h("option", {value: o}, o || "no default"))),
    h("label", {}, h("input", {type: "checkbox", class: "c-pk"}), "PK"), h("label", {}, h("input", {type: "checkbox", class: "c-nn"}), "not null"),
    h("input", {class: "c-ref", placeholder: "FK: table.column", size: 14}));
}
const TYPES = ["bigint", "int8", "integer", "text", "boolean", "jsonb", "json", "uuid", "timestamptz", "date", "numeric", "text[]", "int4[]", "real"];

function readColumns(box) {
  return [...box.querySelectorAll(".col-spec")].map((r) => {
    const name = r.querySelector(".c-name").value.trim(); if (!name) return null;
    const ref = r.querySelector(".c-ref").value.trim();
    const [rt, rc] = ref.split(".");
    return {name, type: r.querySelector(".c-type").value.trim(), default: r.querySelector(".c-default").value || null,
      primary_key: r.querySelector(".c-pk").checked, not_null: r.querySelector(".c-nn").checked,
      references: ref ? {schema: "public", table: rt, column: rc || "id"} : null};
  }).filter(Boolean);
}

function newTableDialog() {
  const cols = h("div", {id: "new-columns"}, columnRow());
  const first = cols.querySelector(".col-spec");
  first.querySelector(".c-name").value = "id"; first.querySelector(".c-type").value = "bigint"; first.querySelector(".c-default").value = "identity"; first.querySelector(".c-pk").checked = true;
  const sqlBox = h("pre", {id: "ddl-preview"}, "");
  const spec = () => ({schema: document.getElementById("nt-schema").value, name: document.getElementById("nt-name").value, columns: readColumns(cols), rls: document.getElementById("nt-rls").checked});
  modal("New table", h("div", {},
    h("datalist", {id: "types"}, TYPES.map((t) => h("option", {value: t}))),
    h("div", {class: "row"}, h("input", {id: "nt-schema", value: "public", size: 10}), h("input", {id: "nt-name", placeholder: "table name"}),
      h("label", {}, h("input", {type: "checkbox", id: "nt-rls", checked: true}), "enable RLS")),
    cols, h("button", {onclick: () => cols.append(columnRow())}, "+ column"),
    h("button", {id: "nt-preview", onclick: async () => { const r = await api("ddl/create", {body: {...spec(), preview: true}}); sqlBox.textContent = r.data.sql || errText(r.data); }}, "Show SQL"),
    sqlBox), [["Create", async () => {
      const r = await api("ddl/create", {body: spec()});
      if (!r.ok) { sqlBox.textContent = (r.data.sql || "") + "\n" + (r.data.error ? errText(r.data.error) : errText(r.data)); return false; }
      state.schema = spec().schema; state.table = spec().name; toast("Table created"); tablesView();
    }, "primary"]]);
}

function alterDialog(info) {
  const action = h("select", {id: "alter-action"}, ["add_column", "drop_column", "rename_column", "set_type", "set_default", "set_not_null", "drop_not_null", "add_index", "add_foreign_key", "rename", "drop"].map((a) => h("option", {value: a}, a)));
  const col = h("select", {id: "alter-column"}, info.columns.map((c) => h("option", {value: c.name}, c.name)));
  const extra = h("input", {id: "alter-extra", placeholder: "new name / type / default literal / ref table.column / index cols a,b"});
  const newCol = h("div", {}, columnRow());
  const pre = h("pre", {}, "");
  const spec = () => {
    const a = action.value, e = extra.value.trim(), s = {schema: state.schema, table: state.table, action: a, column: col.value};
    if (a === "add_column") s.column = readColumns(newCol)[0];
    if (a === "rename_column" || a === "rename") s.to = e;
    if (a === "set_type") s.type = e;
    if (a === "set_default") s.default = e ? (["now()", "gen_random_uuid()", "auth.uid()", "true", "false"].includes(e) ? e : {literal: e}) : null;
    if (a === "add_index") s.columns = e ? e.split(",").map((x) => x.trim()) : [col.value];
    if (a === "add_foreign_key") { const [t, c] = e.split("."); s.references = {schema: "public", table: t, column: c || "id"}; }
    return s;
  };
  modal("Alter " + state.table, h("div", {}, h("div", {class: "row"}, action, col, extra), h("p", {class: "muted small"}, "For add_column fill the column row:"), newCol,
    h("button", {onclick: async () => { const r = await api("ddl/alter", {body: {...spec(), preview: true}}); pre.textContent = r.data.sql || errText(r.data); }}, "Show SQL"), pre),
    [["Run", async () => { const r = await api("ddl/alter", {body: spec()}); if (!r.ok) { pre.textContent = r.data.error ? errText(r.data.error) : errText(r.data); return false; } toast("Done"); tablesView(); }, "primary"]]);
}

function policyEditor(info) {
  const tpl = h("select", {id: "policy-template"}, Object.entries(info.templates).map(([k, label]) => h("option", {value: k}, label)));
  const col = h("select", {id: "policy-column"}, info.columns.map((c) => h("option", {value: c.name, selected: c.name === "user_id"}, c.name)));
  const pre = h("pre", {id: "policy-sql"}, "");
  const spec = () => ({schema: state.schema, table: state.table, template: tpl.value, column: col.value});
  const preview = async () => { const r = await api("ddl/policy", {body: {...spec(), preview: true}}); pre.textContent = r.data.sql || errText(r.data); };
  tpl.addEventListener("change", preview); col.addEventListener("change", preview); preview();
  return h("div", {}, h("h4", {}, "Add a policy"), h("div", {class: "row"}, tpl, h("span", {}, "owner column"), col,
    h("button", {class: "primary", id: "policy-create", onclick: () => runDdl("policy", spec())}, "Create policy")),
    h("p", {class: "muted small"}, "This SQL will run:"), pre);
}

// --- SQL editor -----------------------------------------------------------------------------------
async function sqlView() {
  const ta = h("textarea", {id: "sql-input", rows: 10, spellcheck: "false", placeholder: "select * from …   (Ctrl+Enter runs)"});
  const out = h("div", {id: "sql-result"});
  const snips = h("ul", {id: "snippets"});
  const run = async (explain = false, confirmed = false) => {
    out.replaceChildren(h("p", {class: "muted"}, "Running…"));
    const r = await api("sql", {body: {sql: ta.value, explain, confirm: confirmed}});
    if (r.status === 409) {
      out.replaceChildren(h("div", {class: "banner", id: "sql-confirm"}, `Destructive statement: ${r.data.confirm}. `,
        h("button", {class: "danger", id: "sql-confirm-run", onclick: () => run(false, true)}, "Run anyway")));
      return;
    }
    if (r.data.error) {
      const e = r.data.error;
      out.replaceChildren(h("p", {class: "error", id: "sql-error"}, `ERROR ${e.code || ""}: ${e.message}` + (e.line ? ` (line ${e.line}, column ${e.column}, position ${e.position})` : "") + (e.detail ? `\n${e.detail}` : "") + (e.hint ? `\nHint: ${e.hint}` : "")));
      if (e.position) { ta.focus(); ta.setSelectionRange(e.position - 1, e.position); }
      return;
    }
    if (!r.ok) { out.replaceChildren(h("p", {class: "error", id: "sql-error"}, errText(r.data))); return; }
    out.replaceChildren(h("p", {class: "muted", id: "sql-status"}, r.data.status + (r.data.truncated ? " (first 1000 shown)" : "")),
      r.data.plan ? h("pre", {id: "sql-plan"}, r.data.plan) : r.data.columns.length ? grid(r.data.columns, r.data.rows) : "");
  };
  ta.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  const loadSnips = async () => {
    const r = await api("snippets");
    snips.replaceChildren(...r.data.snippets.map((s) => h("li", {}, h("button", {class: "link", onclick: () => { ta.value = s.sql; ta.focus(); }}, s.name), " ",
      h("button", {class: "link danger", "aria-label": "delete snippet", onclick: async () => { await api("snippets?id=" + s.id, {method: "DELETE"}); loadSnips(); }}, "×"))));
  };
  view.replaceChildren(h("h2", {}, "SQL editor"), h("p", {class: "muted small"}, "Runs as the database owner."), h("div", {class: "cols"},
    h("div", {style: "flex:1;min-width:0"}, ta, h("div", {class: "row"},
      h("button", {class: "primary", id: "sql-run", onclick: () => run()}, "Run (Ctrl+Enter)"),
      h("button", {id: "sql-explain", onclick: () => run(true)}, "Explain"),
      h("button", {id: "sql-save", onclick: async () => { const name = prompt("Snippet name"); if (name) { await api("snippets", {body: {name, sql: ta.value}}); loadSnips(); } }}, "Save as snippet")), out),
    h("div", {class: "side"}, h("h4", {}, "Saved snippets"), snips)));
  loadSnips(); ta.focus();
}

// --- users -----------------------------------------------------------------------------------------
const users = {page: 1, q: ""};
async function usersView() {
  const r = await proxy("auth", "admin/users?" + qs({page: users.page, per_page: 50, filter: users.q}));
  const list = r.ok ? (r.data.users || []) : [];
  const search = h("input", {id: "user-search", placeholder: "search email (Enter)", value: users.q, onkeydown: (e) => { if (e.key === "Enter") { users.q = e.target.value; users.page = 1; usersView(); } }});
  const detail = h("div", {id: "user-detail"});
  const banned = (u) => u.banned_until && new Date(u.banned_until) > new Date();
  view.replaceChildren(h("h2", {}, "Users"), h("div", {class: "row"}, search,
    h("button", {class: "primary", onclick: () => userDialog("create")}, "Create user"), h("button", {onclick: () => userDialog("invite")}, "Invite"),
    h("button", {disabled: users.page === 1, onclick: () => { users.page--; usersView(); }}, "← Prev"), h("span", {}, `page ${users.page}`),
    h("button", {disabled: list.length < 50, onclick: () => { users.page++; usersView(); }}, "Next →")),
    r.ok ? grid(["email", "phone", "created_at", "last_sign_in_at", "banned_until"], list, {actions: (u) => h("span", {class: "row"},
      h("button", {onclick: () => userDetail(u.id, detail)}, "Open"),
      h("button", {"data-ban": u.email, onclick: async () => { const x = await proxy("auth", "admin/users/" + u.id, {method: "PUT", body: {ban_duration: banned(u) ? "none" : "876000h"}}); x.ok ? usersView() : toast(errText(x.data)); }}, banned(u) ? "Unban" : "Ban"),
      h("button", {onclick: async () => { const x = await proxy("auth", "recover", {body: {email: u.email}}); toast(x.ok ? "Recovery mail sent" : errText(x.data)); }}, "Send recovery"),
      h("button", {class: "danger", onclick: async () => { if (!confirm(`Delete ${u.email}?`)) return; const x = await proxy("auth", "admin/users/" + u.id, {method: "DELETE"}); x.ok ? usersView() : toast(errText(x.data)); }}, "Delete"))})
      : h("p", {class: "error"}, errText(r.data)), detail);
}
async function userDetail(id, box) {
  const r = await proxy("auth", "admin/users/" + id);
  const s = await api("user-sessions?id=" + encodeURIComponent(id));
  if (!r.ok) { box.replaceChildren(h("p", {class: "error"}, errText(r.data))); return; }
  box.replaceChildren(h("h3", {}, r.data.email || r.data.phone || id),
    h("h4", {}, "Identities"), grid(["provider", "identity_id", "created_at", "last_sign_in_at"], r.data.identities || []),
    h("h4", {}, "Sessions"), grid(["id", "created_at", "updated_at", "aal", "user_agent", "ip"], s.ok ? s.data.sessions : []),
    h("h4", {}, "Factors"), grid(["id", "factor_type", "status", "friendly_name", "created_at"], r.data.factors || []),
    h("h4", {}, "Raw"), h("pre", {}, JSON.stringify(r.data, null, 2)));
}
function userDialog(kind) {
  const email = h("input", {id: "new-user-email", type: "email", placeholder: "email"});
  const pw = h("input", {id: "new-user-password", type: "password", placeholder: "password"});
  modal(kind === "create" ? "Create user" : "Invite user", h("div", {class: "row"}, email, kind === "create" ? pw : null), [[kind === "create" ? "Create" : "Send invite", async () => {
    const x = kind === "create" ? await proxy("auth", "admin/users", {body: {email: email.value, password: pw.value, email_confirm: true}})
                                : await proxy("auth", "invite", {body: {email: email.value}});
    if (!x.ok) { toast(errText(x.data)); return false; }
    usersView();
  }, "primary"]]);
}

// --- storage ------------------------------------------------------------------------------------------
const store = {bucket: null, prefix: ""};
async function storageView() {
  const b = await proxy("storage", "bucket");
  const buckets = b.ok ? b.data : [];
  view.replaceChildren(h("h2", {}, "Storage"), h("div", {class: "cols"},
    h("div", {class: "side"}, h("button", {class: "primary", onclick: bucketDialog}, "New bucket"),
      h("ul", {id: "bucket-list"}, buckets.map((x) => h("li", {}, h("button", {"data-bucket": x.name, onclick: () => { store.bucket = x.name; store.prefix = ""; storageView(); }},
        x.name, " ", h("span", {class: "badge"}, x.public ? "public" : "private")))))),
    h("div", {id: "bucket-detail", style: "flex:1;min-width:0"}, store.bucket ? "" : h("p", {class: "muted"}, "Pick a bucket."))));
  if (store.bucket) bucketDetail(buckets.find((x) => x.name === store.bucket));
}
function bucketDialog() {
  const name = h("input", {id: "bucket-name", placeholder: "name"}), pub = h("input", {type: "checkbox"}), size = h("input", {placeholder: "file size limit (bytes)"}), mimes = h("input", {placeholder: "allowed mime types, e.g. image/*"});
  modal("New bucket", h("div", {}, h("div", {class: "row"}, name, h("label", {}, pub, "public")), h("div", {class: "row"}, size, mimes)), [["Create", async () => {
    const x = await proxy("storage", "bucket", {body: {name: name.value, id: name.value, public: pub.checked, file_size_limit: size.value ? Number(size.value) : null, allowed_mime_types: mimes.value ? mimes.value.split(",").map((s) => s.trim()) : null}});
    if (!x.ok) { toast(errText(x.data)); return false; }
    store.bucket = name.value; storageView();
  }, "primary"]]);
}
const enc = (p) => p.split("/").map(encodeURIComponent).join("/");
async function signedUrl(path, expiresIn = 3600) {
  const x = await proxy("storage", `object/sign/${enc(store.bucket)}/${enc(path)}`, {body: {expiresIn}});
  if (!x.ok) throw new Error(errText(x.data));
  return location.origin + "/storage/v1" + x.data.signedURL;
}
async function bucketDetail(bucket) {
  const box = document.getElementById("bucket-detail");
  const r = await proxy("storage", `object/list/${enc(store.bucket)}`, {body: {prefix: store.prefix, limit: 500, offset: 0, sortBy: {column: "name", order: "asc"}}});
  const items = r.ok ? r.data : [];
  const preview = h("div", {class: "preview", id: "preview"});
  const progress = h("progress", {id: "upload-progress", max: 100, value: 0, hidden: true});
  const drop = h("div", {class: "drop", id: "drop", tabindex: 0}, "Drop files here or ", h("input", {type: "file", id: "upload-input", multiple: true, onchange: (e) => upload([...e.target.files])}));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload([...e.dataTransfer.files]); });
  const upload = async (files) => {
    for (const f of files) await new Promise((done) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/dashboard/api/proxy/storage/object/${enc(store.bucket)}/${enc(store.prefix + f.name)}`);
      xhr.setRequestHeader("x-csrf-token", CSRF); xhr.setRequestHeader("content-type", f.type || "application/octet-stream"); xhr.setRequestHeader("x-upsert", "true");
      progress.hidden = false;
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = Math.round(e.loaded / e.total * 100); };
      xhr.onload = () => { toast(xhr.status < 300 ? `Uploaded ${f.name}` : `Upload failed: ${xhr.responseText}`); done(); };
      xhr.onerror = () => { toast("Upload failed"); done(); };
      xhr.send(f);
    });
    bucketDetail(bucket);
  };
  const isFolder = (o) => o.id === null;
  box.replaceChildren(h("h3", {}, store.bucket, " ", h("span", {class: "muted small"}, bucket ? `public: ${bucket.public}, size limit: ${bucket.file_size_limit ?? "none"}, types: ${(bucket.allowed_mime_types || ["any"]).join(", ")}` : "")),
    h("div", {class: "row"}, h("span", {}, "/" + store.prefix), store.prefix ? h("button", {onclick: () => { store.prefix = store.prefix.split("/").slice(0, -2).join("/"); if (store.prefix) store.prefix += "/"; bucketDetail(bucket); }}, "Up") : null),
    drop, progress,
    grid(["name", "size", "type", "updated_at"], items.map((o) => ({...o, size: o.metadata?.size ?? "", type: isFolder(o) ? "folder" : o.metadata?.mimetype ?? ""})), {actions: (o) => isFolder(o)
      ? h("button", {onclick: () => { store.prefix += o.name + "/"; bucketDetail(bucket); }}, "Open")
      : h("span", {class: "row"},
        h("button", {"data-preview": o.name, onclick: async () => {
          const url = await signedUrl(store.prefix + o.name, 300); const t = o.metadata?.mimetype || "";
          preview.replaceChildren(t.startsWith("image/") ? h("img", {src: url, alt: o.name, id: "preview-img"}) : t === "application/pdf" ? h("iframe", {src: url, title: o.name}) : h("a", {href: url}, "Open " + o.name));
        }}, "Preview"),
        h("button", {onclick: async () => { const a = h("a", {href: await signedUrl(store.prefix + o.name, 300) + "&download=" + encodeURIComponent(o.name)}); a.click(); }}, "Download"),
        h("button", {onclick: async () => { const secs = Number(prompt("Expires in (seconds)", "3600")); if (!secs) return; const u = await signedUrl(store.prefix + o.name, secs); preview.replaceChildren(h("input", {value: u, size: 80, readonly: true, id: "signed-url"})); }}, "Signed URL"),
        h("button", {onclick: async () => { const to = prompt("Move/rename to (path in bucket)", store.prefix + o.name); if (!to) return;
          const x = await proxy("storage", "object/move", {body: {bucketId: store.bucket, sourceKey: store.prefix + o.name, destinationKey: to}}); x.ok ? bucketDetail(bucket) : toast(errText(x.data)); }}, "Move"),
        h("button", {class: "danger", onclick: async () => { if (!confirm("Delete " + o.name + "?")) return;
          const x = await proxy("storage", `object/${enc(store.bucket)}`, {method: "DELETE", body: {prefixes: [store.prefix + o.name]}}); x.ok ? bucketDetail(bucket) : toast(errText(x.data)); }}, "Delete"))}),
    preview);
}

// --- realtime inspector ----------------------------------------------------------------------------
let socket = null;
function realtimeView() {
  const chan = h("input", {id: "rt-channel", value: "inspector", size: 14});
  const table = h("input", {id: "rt-table", placeholder: "table for postgres_changes (optional)", size: 24});
  const log = h("pre", {id: "rt-log", style: "height:320px"}, "");
  const say = (line) => { log.textContent = line + "\n" + log.textContent; };
  const msg = h("input", {id: "rt-message", placeholder: '{"hello":"world"}', size: 30});
  let ref = 0, topic = null, beat = null;
  const send = (o) => socket.send(JSON.stringify({...o, ref: String(++ref)}));
  const join = () => {
    if (socket) socket.close();
    topic = "realtime:" + chan.value;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${proto}://${location.host}/realtime/v1/websocket?apikey=${encodeURIComponent(ANON)}&vsn=1.0.0`);
    socket.onopen = () => {
      const changes = table.value ? [{event: "*", schema: "public", table: table.value}] : [];
      send({topic, event: "phx_join", payload: {config: {broadcast: {self: true}, presence: {key: "dashboard"}, postgres_changes: changes}, access_token: ANON}});
      beat = setInterval(() => send({topic: "phoenix", event: "heartbeat", payload: {}}), 25000);
      say("connected");
    };
    socket.onmessage = (e) => { const m = JSON.parse(e.data); if (m.event === "phx_reply" && m.topic === "phoenix") return; say(`${new Date().toLocaleTimeString()} ${m.event} ${JSON.stringify(m.payload)}`); };
    socket.onclose = () => { clearInterval(beat); say("closed"); };
  };
  view.replaceChildren(h("h2", {}, "Realtime inspector"), h("p", {class: "muted small"}, "Joins with the anon key, as an app would."),
    h("div", {class: "row"}, "channel", chan, table, h("button", {class: "primary", id: "rt-join", onclick: join}, "Join")),
    h("div", {class: "row"}, msg, h("button", {id: "rt-send", onclick: () => { let p; try { p = JSON.parse(msg.value || "{}"); } catch { p = {text: msg.value}; } send({topic, event: "broadcast", payload: {type: "broadcast", event: "message", payload: p}}); }}, "Send broadcast"),
      h("button", {onclick: () => send({topic, event: "presence", payload: {type: "presence", event: "track", payload: {at: Date.now()}}})}, "Track presence")), log);
}

// --- API docs --------------------------------------------------------------------------------------
async function apiView() {
  const r = await proxy("rest", "");
  const paths = r.ok ? Object.keys(r.data.paths || {}).filter((p) => p !== "/") : [];
  const out = h("div", {id: "api-doc"});
  const open = (p) => {
    const isRpc = p.startsWith("/rpc/"); const name = p.replace(/^\/(rpc\/)?/, "");
    const js = isRpc ? `const { data, error } = await supabase.rpc('${name}', {})` : `const { data, error } = await supabase.from('${name}').select('*').limit(10)`;
    const py = isRpc ? `data = supabase.rpc("${name}", {}).execute()` : `data = supabase.table("${name}").select("*").limit(10).execute()`;
    const curl = isRpc ? `curl -X POST '${API_URL}/rest/v1/rpc/${name}' -H 'apikey: ${ANON}' -H 'Authorization: Bearer ${ANON}' -H 'Content-Type: application/json' -d '{}'`
                       : `curl '${API_URL}/rest/v1/${name}?select=*&limit=10' -H 'apikey: ${ANON}' -H 'Authorization: Bearer ${ANON}'`;
    const def = r.data.definitions?.[name];
    const block = (label, id, text) => h("div", {}, h("div", {class: "row"}, h("strong", {}, label), h("button", {"data-copy": id, onclick: async () => { try { await navigator.clipboard.writeText(text); toast("Copied"); } catch { toast("Select and copy"); } }}, "Copy")), h("pre", {id}, text));
    out.replaceChildren(h("h3", {}, p), def ? grid(["column", "type", "format", "description"], Object.entries(def.properties || {}).map(([k, v]) => ({column: k, type: v.type, format: v.format, description: v.description || ""}))) : null,
      block("supabase-js", "snippet-js", js), block("supabase-py", "snippet-py", py), block("curl", "snippet-curl", curl));
  };
  view.replaceChildren(h("h2", {}, "API docs"), h("p", {class: "muted small"}, `URL ${API_URL} · anon key in the snippets`), h("div", {class: "cols"},
    h("div", {class: "side"}, h("ul", {id: "api-paths"}, paths.map((p) => h("li", {}, h("button", {"data-path": p, onclick: () => open(p)}, p))))), out));
}

// --- logs -----------------------------------------------------------------------------------------------
async function logsView() {
  const f = {q: h("input", {id: "log-q", placeholder: "search path / request id"}), service: h("select", {id: "log-service"}, ["", "auth", "rest", "storage", "realtime", "dashboard", "tables", "other"].map((s) => h("option", {value: s}, s || "all services"))),
    min_status: h("select", {}, [["", "any status"], ["400", "≥ 400"], ["500", "≥ 500"]].map(([v, l]) => h("option", {value: v}, l))), slow_ms: h("input", {placeholder: "slower than ms", size: 12})};
  const out = h("div", {id: "log-rows"});
  const load = async () => { const r = await api("logs?" + qs(Object.fromEntries(Object.entries(f).map(([k, el]) => [k, el.value])))); out.replaceChildren(grid(["time", "service", "method", "path", "status", "duration_ms", "request_id", "client_ip"], r.data.requests)); };
  Object.values(f).forEach((el) => el.addEventListener("change", load));
  f.q.addEventListener("keydown", (e) => e.key === "Enter" && load());
  const slowBox = h("div", {id: "slow-queries"});
  const loadSlow = async () => { const r = await api("slow-queries"); slowBox.replaceChildren(
    h("h4", {}, "Running for over 1 s"), grid(["pid", "role", "state", "seconds", "query"], r.data.running || []),
    h("h4", {}, "Slowest statements (mean)"), r.data.note ? h("p", {class: "muted small"}, r.data.note) : grid(["query", "calls", "mean_ms", "total_ms"], r.data.top || [])); };
  view.replaceChildren(h("h2", {}, "Logs"), h("p", {class: "muted small"}, "Recent requests of this process (newest first); filter by duration for slow requests."), h("div", {class: "row"}, ...Object.values(f), h("button", {onclick: () => { load(); loadSlow(); }}, "Refresh")), out,
    h("h3", {}, "Slow queries"), slowBox);
  load(); loadSlow();
}

// --- settings ---------------------------------------------------------------------------------------
async function settingsView() {
  const {data: s} = await api("settings");
  const secret = h("code", {id: "service-key"}, "••••••••");
  view.replaceChildren(h("h2", {}, "Settings"),
    grid(["what", "value"], [["API URL", s.api_url], ["anon key", s.anon_key], ["JWKS", s.jwks_url], ["JWT algorithm", s.jwt_algorithm], ["storage backend", s.storage_backend], ["mail backend", s.mail_backend], ["Redis", s.redis], ["workers", s.workers],
      ...Object.entries(s.versions).map(([k, v]) => [k + " version", v])].map(([what, value]) => ({what, value}))),
    h("div", {class: "row"}, "service_role key: ", secret, h("button", {id: "reveal-key", onclick: async () => { const r = await api("service-key", {body: {}}); secret.textContent = r.data.service_role_key; }}, "Reveal")),
    h("h3", {}, "Auth settings in force"), grid(["variable", "value"], Object.entries(s.auth_settings).map(([k, v]) => ({variable: "OWNBASE_" + k.toUpperCase(), value: v}))),
    h("h3", {}, "Applied migrations"), grid(["version", "name", "applied_at"], s.migrations));
}

// --- router and keys ---------------------------------------------------------------------------------
const ROUTES = {tables: tablesView, sql: sqlView, users: usersView, storage: storageView, realtime: realtimeView, api: apiView, logs: logsView, settings: settingsView};
async function route() {
  const name = (location.hash.replace(/^#\//, "") || "tables").split("/")[0];
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === "#/" + name));
  try { await (ROUTES[name] || tablesView)(); } catch (e) { view.replaceChildren(h("p", {class: "error"}, String(e))); }
  document.body.dataset.ready = name;
}
window.addEventListener("hashchange", route);
document.addEventListener("dashboard:reload", route);  // re-render the current page (also used by tests)
let pendingG = false;
document.addEventListener("keydown", (e) => {
  if (["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "g") { pendingG = true; setTimeout(() => (pendingG = false), 1200); return; }
  if (pendingG) { const a = document.querySelector(`nav a[data-key="${e.key}"]`); if (a) { location.hash = a.getAttribute("href"); pendingG = false; } }
});
document.getElementById("logout").addEventListener("click", async () => { await api("../logout", {body: {}}); location.href = "/dashboard/login"; });
route();
