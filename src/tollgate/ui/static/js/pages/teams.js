// Teams: list (search, paging), create with alias, budget and duration, models and limits;
// members (add, remove) and budget status of each team.
import { get, post } from "../api.js";
import { button, field, h, replace, section, status, values } from "../dom.js";
import { budgetStatus } from "../budget.js";
import * as fmt from "../format.js";
import { createForm, errorText, policyBody, policyFields } from "../forms.js";
import { pager, table } from "../table.js";

export async function render(root, ctx) {
  const models = (await get("/v1/models")).data.map(m => m.id);
  const detail = h("div", { "aria-live": "polite" });
  const listBox = h("div");
  const search = h("input", { type: "search", id: "team-search", placeholder: "alias or id" });
  let list;

  const columns = [
    { title: "Team", cell: r => r.team_alias || r.team_id },
    { title: "ID", cell: r => h("code", {}, r.team_id) },
    { title: "Organization", cell: r => r.organization_id || "—" },
    { title: "Members", num: true, cell: r => fmt.count(r.member_count) },
    { title: "Spend", num: true, cell: r => fmt.usd(r.spend) },
    { title: "Budget", cell: r => fmt.budget(r.max_budget, r.budget_duration) },
    { title: "Models", cell: r => r.models.length ? r.models.join(", ") : "all" },
    { title: "Limits", cell: r => `${fmt.limit(r.rpm_limit, "rpm")}, ${fmt.limit(r.tpm_limit, "tpm")}` },
    { title: "", cell: r => button("Details", () => showTeam(r.team_id), { label: `Details of team ${r.team_alias || r.team_id}` }) },
  ];

  async function showTeam(teamId) {
    replace(detail, h("p", { class: "muted" }, "Loading…"));
    try {
      const info = await get("/team/info", { team_id: teamId });
      const team = info.team_info;
      const memberRows = info.team_memberships.map(m => ({ ...m }));
      const memberColumns = [
        { title: "User", cell: m => m.user_id },
        { title: "Team role", cell: m => m.role },
      ];
      if (ctx.canWrite) {
        memberColumns.push({ title: "", cell: m => button("Remove", async () => {
          try {
            await post("/team/member_delete", { team_id: teamId, user_id: m.user_id });
            await showTeam(teamId);
          } catch (err) { detail.prepend(status(errorText(err), "error")); }
        }, { kind: "danger", label: `Remove ${m.user_id} from the team` }) });
      }
      const parts = [
        h("h2", {}, `Team ${team.team_alias || team.team_id}`),
        await budgetStatus({ team_id: teamId }),
        h("h3", {}, "Members"),
        table(memberColumns, memberRows, { caption: "Members", empty: ctx.canWrite ? "No members yet: add one below." : "No members." }),
      ];
      if (ctx.canWrite) {
        parts.push(createForm("Add a member", [
          field("User ID or email", "member", { required: true }),
          field("Team role", "role", { kind: "select", options: [["user", "user"], ["admin", "admin"]] }),
        ], async form => {
          const v = values(form);
          const member = v.member.includes("@") ? { user_email: v.member } : { user_id: v.member };
          await post("/team/member_add", { team_id: teamId, member: { ...member, role: v.role || "user" } });
          await showTeam(teamId);
          await list.reload();
          return null;
        }, { open: true, submitText: "Add member" }));
      }
      replace(detail, h("section", { class: "card" }, ...parts));
    } catch (err) {
      replace(detail, status(errorText(err), "error"));
    }
  }

  const parts = [];
  if (ctx.canWrite) {
    parts.push(createForm("Create a team", [
      field("Team alias", "team_alias", { required: true, placeholder: "e.g. document-processing" }),
      field("Team ID", "team_id", { help: "Optional; a UUID is made when empty." }),
      field("Organization ID", "organization_id"),
      ...policyFields({ models }),
    ], async form => {
      const v = values(form);
      const body = policyBody(v);
      for (const name of ["team_alias", "team_id", "organization_id"]) if (v[name]) body[name] = v[name];
      const team = await post("/team/new", body);
      await list.first();
      return status(`Team ${team.team_alias} created with ${fmt.budget(team.max_budget, team.budget_duration)}.`, "ok");
    }));
  }
  const searchForm = h("form", { class: "inline", role: "search" },
    h("label", { for: "team-search" }, "Search teams"), search, h("button", { type: "submit" }, "Search"));
  searchForm.addEventListener("submit", e => { e.preventDefault(); list.first(); });
  parts.push(section("All teams", searchForm, listBox), detail);
  replace(root, ...parts);
  list = pager(listBox, async page => {
    const a = await get("/ui/api/teams", { search: search.value.trim(), page, size: 25 });
    return { rows: a.teams, hasMore: page < a.total_pages, totalPages: a.total_pages };
  }, rows => table(columns, rows, { caption: "Teams",
    empty: ctx.canWrite ? "No teams yet. Create one above to give a group a budget and models." : "No teams." }));
  await list.first();
}
