// Keys: list (search, paging), create (plaintext shown once, with a copy button), block/unblock,
// regenerate, delete. Internal users see and manage only their own keys.
import { get, post } from "../api.js";
import { button, field, h, replace, section, status, values } from "../dom.js";
import * as fmt from "../format.js";
import { createForm, errorText, policyBody, policyFields } from "../forms.js";
import { pager, table } from "../table.js";

export async function render(root, ctx) {
  const models = (await get("/v1/models")).data.map(m => m.id);
  const notice = h("div", { "aria-live": "polite" });
  const listBox = h("div");
  const search = h("input", { type: "search", id: "key-search", name: "search", placeholder: "alias, user or team" });
  let list;

  const load = async page => {
    const answer = await get("/ui/api/keys", { search: search.value.trim(), page, size: 25 });
    return { rows: answer.keys, hasMore: page < answer.total_pages, totalPages: answer.total_pages };
  };

  async function act(label, fn) {
    replace(notice);
    try {
      const shown = await fn();
      replace(notice, shown || status(label, "ok"));
      await list.reload();
    } catch (err) {
      replace(notice, status(errorText(err), "error"));
    }
  }

  const actions = row => {
    const out = [];
    const own = ctx.canWrite || (ctx.canWriteOwnKeys && row.user_id === ctx.session.user_id);
    if (ctx.canWrite) {
      out.push(row.blocked
        ? button("Unblock", () => act("Key unblocked.", () => post("/key/unblock", { key: row.token })),
          { label: `Unblock key ${row.key_alias || row.key_name}` })
        : button("Block", () => act("Key blocked.", () => post("/key/block", { key: row.token })),
          { label: `Block key ${row.key_alias || row.key_name}` }));
    }
    if (own) {
      out.push(button("Regenerate", () => act("", async () => {
        if (!confirm(`Regenerate ${row.key_alias || row.key_name}? The old key stops working now.`)) return status("Not regenerated.");
        return shownOnce(await post(`/key/${row.token}/regenerate`, {}));
      }), { label: `Regenerate key ${row.key_alias || row.key_name}` }));
      out.push(button("Delete", () => act("Key deleted.", async () => {
        if (!confirm(`Delete ${row.key_alias || row.key_name}? It stops working now.`)) return status("Not deleted.");
        await post("/key/delete", { keys: [row.token] });
        return null;
      }), { kind: "danger", label: `Delete key ${row.key_alias || row.key_name}` }));
    }
    return h("div", { class: "row-actions" }, out);
  };

  const columns = [
    { title: "Alias", cell: r => r.key_alias || h("span", { class: "muted" }, "(none)") },
    { title: "Key", cell: r => h("code", {}, r.key_name) },
    { title: "User", cell: r => r.user_id || "—" },
    { title: "Team", cell: r => r.team_id || "—" },
    { title: "Spend", num: true, cell: r => fmt.usd(r.spend) },
    { title: "Budget", cell: r => fmt.budget(r.max_budget, r.budget_duration) },
    { title: "Resets", cell: r => r.budget_reset_at ? fmt.when(r.budget_reset_at) : "—" },
    { title: "Expires", cell: r => r.expires ? fmt.when(r.expires) : "never" },
    { title: "Status", cell: r => r.blocked ? h("span", { class: "badge bad" }, "blocked") : h("span", { class: "badge ok" }, "active") },
    { title: "Actions", cell: actions },
  ];
  const emptyText = ctx.canWriteOwnKeys ? "No keys yet. Create one above; its secret is shown once."
    : "No keys to show.";
  const searchForm = h("form", { class: "inline", role: "search" },
    h("label", { for: "key-search" }, "Search keys"), search, h("button", { type: "submit" }, "Search"));
  searchForm.addEventListener("submit", e => { e.preventDefault(); list.first(); });

  const parts = [];
  if (ctx.canWriteOwnKeys) {
    const fields = [
      field("Key alias", "key_alias", { placeholder: "e.g. invoice-agent" }),
      ctx.canWrite ? field("Team ID", "team_id", { help: "The key's team: its budget and models apply too." }) : null,
      ctx.canWrite ? field("User ID", "user_id") : null,
      ...policyFields({ models }),
      field("Expires after", "duration", { placeholder: "e.g. 30d; empty = never",
        help: "A duration: 1h, 7d, 30d, 1mo." }),
    ].filter(Boolean);
    parts.push(createForm("Create a key", fields, async form => {
      const v = values(form);
      const body = { ...policyBody(v) };
      for (const name of ["key_alias", "team_id", "user_id", "duration"]) if (v[name]) body[name] = v[name];
      const created = await post("/key/generate", body);
      await list.first();
      return shownOnce(created);
    }, { open: false }));
  }
  parts.push(notice, section("All keys", searchForm, listBox));
  replace(root, ...parts);
  list = pager(listBox, load, rows => table(columns, rows, { caption: "Keys", empty: emptyText }));
  await list.first();
}

// The plaintext key, shown once, with a copy button.
function shownOnce(created) {
  const secret = h("code", { class: "secret", "data-testid": "new-key" }, created.key);
  const copy = button("Copy key", async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      copy.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(secret);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copy.textContent = "Selected: press Ctrl+C";
    }
  });
  return h("div", { class: "card once", role: "status" },
    h("p", {}, h("strong", {}, "Copy this key now: it is shown only once."),
      ` Alias: ${created.key_alias || "(none)"}.`),
    h("p", {}, secret, " ", copy));
}
