// Usage: spend and tokens per day for a date range, grouped by key, team, user, model or tag;
// a stacked chart of the top groups, their totals (CSV export), and budget status.
import { get } from "../api.js";
import { button, field, h, replace, section, status, values } from "../dom.js";
import { budgetStatus } from "../budget.js";
import { stackedBars } from "../chart.js";
import * as fmt from "../format.js";
import { errorText } from "../forms.js";
import { table } from "../table.js";

const GROUPS = ["key", "team", "user", "model", "tag"];
const BUDGET_PARAM = { key: "key", team: "team_id", user: "user_id" };

export async function render(root, ctx) {
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 29 * 86400000);
  const form = h("form", { class: "grid-form filters" },
    field("Group by", "group_by", { kind: "select", options: GROUPS
      .filter(g => (ctx.session.usage_groups || GROUPS).includes(g) && (ctx.readsAll || g !== "user"))
      .map(g => [g, g]) }),
    field("From", "start_date", { kind: "date", value: fmt.isoDate(monthAgo), required: true }),
    field("To", "end_date", { kind: "date", value: fmt.isoDate(today), required: true }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Show usage")));
  const out = h("div", { "aria-live": "polite" });
  const budget = h("div");
  form.addEventListener("submit", event => { event.preventDefault(); show(); });
  replace(root, section("Spend over time", form, out), budget);
  if (!ctx.readsAll && ctx.session.user_id) {
    replace(budget, section("Your budget", await budgetStatus({ user_id: ctx.session.user_id })));
  }

  async function show() {
    const v = values(form);
    replace(out, h("p", { class: "muted" }, "Loading…"));
    let data;
    try {
      data = await get("/ui/api/usage", { group_by: v.group_by, start_date: v.start_date, end_date: v.end_date });
    } catch (err) {
      replace(out, status(errorText(err), "error"));
      return;
    }
    const t = data.totals;
    const cards = h("dl", { class: "totals" },
      h("div", {}, h("dt", {}, "Spend"), h("dd", {}, fmt.usd(t.spend))),
      h("div", {}, h("dt", {}, "Tokens"), h("dd", {}, fmt.tokens(t.total_tokens))),
      h("div", {}, h("dt", {}, "Requests"), h("dd", {}, fmt.count(t.requests))),
      h("div", {}, h("dt", {}, "Failed"), h("dd", {}, fmt.count(t.failed_requests))));
    if (!t.requests) {
      replace(out, cards, h("p", { class: "empty" },
        "No requests in this range. Send one from the Playground, or with a key, and it appears here."));
      return;
    }
    const series = [...data.groups, ...(data.other ? [data.other] : [])];
    const param = BUDGET_PARAM[data.group_by];
    const columns = [
      { title: data.group_by, cell: g => g.label },
      { title: "Spend", num: true, cell: g => fmt.usd(g.spend) },
      { title: "Prompt tokens", num: true, cell: g => fmt.count(g.prompt_tokens) },
      { title: "Completion tokens", num: true, cell: g => fmt.count(g.completion_tokens) },
      { title: "Requests", num: true, cell: g => fmt.count(g.requests) },
      { title: "Failed", num: true, cell: g => fmt.count(g.failed_requests) },
    ];
    if (param && (ctx.readsAll || data.group_by === "key")) {
      columns.push({ title: "", cell: g => g.id ? button("Budget", async () => replace(budget,
        section(`Budget of ${g.label}`, await budgetStatus({ [param]: g.id }))), { label: `Budget of ${g.label}` }) : "" });
    }
    replace(out, cards,
      stackedBars(data.days, series, { format: fmt.usd, title: `Spend per day by ${data.group_by}` }),
      h("p", {}, button("Export CSV", () => exportCsv(data, series), { kind: "ghost" })),
      table(columns, series, { caption: `Spend by ${data.group_by}` }));
  }
  await show();
}

function exportCsv(data, series) {
  const quote = value => `"${String(value ?? "").replaceAll('"', '""')}"`;
  const lines = [["group", "id", "date", "spend_usd"].join(",")];
  for (const g of series) {
    data.days.forEach((day, i) => {
      if (g.daily[i]) lines.push([quote(g.label), quote(g.id), day, g.daily[i]].join(","));
    });
  }
  const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
  const link = h("a", { href: URL.createObjectURL(blob), download: `usage-${data.group_by}-${data.start_date}-${data.end_date}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
