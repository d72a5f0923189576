// Users: list (search, paging) with role, spend and budget; create; per-user budget status.
import { get, post } from "../api.js";
import { button, field, h, replace, section, status, values } from "../dom.js";
import { budgetStatus } from "../budget.js";
import * as fmt from "../format.js";
import { createForm, policyBody, policyFields } from "../forms.js";
import { pager, table } from "../table.js";

const ROLES = [["internal_user", "internal user"], ["internal_user_viewer", "internal user viewer"],
  ["proxy_admin_viewer", "admin viewer"], ["proxy_admin", "proxy admin"]];

export async function render(root, ctx) {
  const models = (await get("/v1/models")).data.map(m => m.id);
  const detail = h("div", { "aria-live": "polite" });
  const listBox = h("div");
  const search = h("input", { type: "search", id: "user-search", placeholder: "id or email" });
  let list;
  const show = async userId => {
    replace(detail, h("section", { class: "card" }, h("h2", {}, `User ${userId}`),
      await budgetStatus({ user_id: userId })));
  };
  const columns = [
    { title: "User", cell: r => r.user_id },
    { title: "Email", cell: r => r.user_email || "—" },
    { title: "Role", cell: r => (r.user_role || "").replaceAll("_", " ") },
    { title: "Spend", num: true, cell: r => fmt.usd(r.spend) },
    { title: "Budget", cell: r => fmt.budget(r.max_budget, r.budget_duration) },
    { title: "Models", cell: r => r.models.length ? r.models.join(", ") : "all" },
    { title: "", cell: r => button("Budget", () => show(r.user_id), { label: `Budget of ${r.user_id}` }) },
  ];
  const parts = [];
  if (ctx.canWrite) {
    parts.push(createForm("Create a user", [
      field("User ID", "user_id", { help: "Optional; a UUID is made when empty." }),
      field("Email", "user_email", { kind: "email" }),
      field("Role", "user_role", { kind: "select", options: ROLES }),
      ...policyFields({ models }),
    ], async form => {
      const v = values(form);
      const body = policyBody(v);
      for (const name of ["user_id", "user_email", "user_role"]) if (v[name]) body[name] = v[name];
      const user = await post("/user/new", body);
      await list.first();
      return status(`User ${user.user_id} created.`, "ok");
    }));
  }
  const searchForm = h("form", { class: "inline", role: "search" },
    h("label", { for: "user-search" }, "Search users"), search, h("button", { type: "submit" }, "Search"));
  searchForm.addEventListener("submit", e => { e.preventDefault(); list.first(); });
  parts.push(section("All users", searchForm, listBox), detail);
  replace(root, ...parts);
  list = pager(listBox, async page => {
    const a = await get("/ui/api/users", { search: search.value.trim(), page, size: 25 });
    return { rows: a.users, hasMore: page < a.total_pages, totalPages: a.total_pages };
  }, rows => table(columns, rows, { caption: "Users",
    empty: ctx.canWrite ? "No users yet. Create one above, or let people sign in with SSO." : "No users." }));
  await list.first();
}
