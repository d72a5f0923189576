// Organizations: list (search, paging) with their teams, spend and budget; create.
import { get, post } from "../api.js";
import { button, field, h, replace, section, status, values } from "../dom.js";
import { budgetStatus } from "../budget.js";
import * as fmt from "../format.js";
import { createForm, policyBody, policyFields } from "../forms.js";
import { pager, table } from "../table.js";

export async function render(root, ctx) {
  const models = (await get("/v1/models")).data.map(m => m.id);
  const detail = h("div", { "aria-live": "polite" });
  const listBox = h("div");
  const search = h("input", { type: "search", id: "org-search", placeholder: "alias or id" });
  let list;
  const columns = [
    { title: "Organization", cell: r => r.organization_alias || r.organization_id },
    { title: "ID", cell: r => h("code", {}, r.organization_id) },
    { title: "Teams", cell: r => r.teams.length ? r.teams.map(t => t.team_alias || t.team_id).join(", ") : "—" },
    { title: "Spend", num: true, cell: r => fmt.usd(r.spend) },
    { title: "Budget", cell: r => fmt.budget(r.max_budget, r.budget_duration) },
    { title: "Models", cell: r => r.models.length ? r.models.join(", ") : "all" },
    { title: "", cell: r => button("Budget", async () => replace(detail, h("section", { class: "card" },
      h("h2", {}, `Organization ${r.organization_alias || r.organization_id}`),
      await budgetStatus({ organization_id: r.organization_id }))), { label: `Budget of ${r.organization_id}` }) },
  ];
  const parts = [];
  if (ctx.canWrite) {
    parts.push(createForm("Create an organization", [
      field("Organization alias", "organization_alias", { required: true }),
      field("Organization ID", "organization_id", { help: "Optional; a UUID is made when empty." }),
      ...policyFields({ models }),
    ], async form => {
      const v = values(form);
      const body = policyBody(v);
      for (const name of ["organization_alias", "organization_id"]) if (v[name]) body[name] = v[name];
      const org = await post("/organization/new", body);
      await list.first();
      return status(`Organization ${org.organization_alias} created.`, "ok");
    }));
  }
  const searchForm = h("form", { class: "inline", role: "search" },
    h("label", { for: "org-search" }, "Search organizations"), search, h("button", { type: "submit" }, "Search"));
  searchForm.addEventListener("submit", e => { e.preventDefault(); list.first(); });
  parts.push(section("All organizations", searchForm, listBox), detail);
  replace(root, ...parts);
  list = pager(listBox, async page => {
    const a = await get("/ui/api/organizations", { search: search.value.trim(), page, size: 25 });
    return { rows: a.organizations, hasMore: page < a.total_pages, totalPages: a.total_pages };
  }, rows => table(columns, rows, { caption: "Organizations",
    empty: ctx.canWrite ? "No organizations yet. Create one to group teams under one budget." : "No organizations." }));
  await list.first();
}
