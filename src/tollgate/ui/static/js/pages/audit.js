// Audit: every admin write (who, which route, which target, when, the answer's status).
import { get } from "../api.js";
import { field, h, replace, section, values } from "../dom.js";
import * as fmt from "../format.js";
import { pager, table } from "../table.js";

export async function render(root) {
  const form = h("form", { class: "grid-form filters" },
    field("Action", "action", { placeholder: "e.g. /key/generate" }),
    field("Target ID", "object_id"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Filter")));
  const listBox = h("div");
  const columns = [
    { title: "Time", cell: r => fmt.when(r.updated_at) },
    { title: "By", cell: r => r.changed_by || "—" },
    { title: "Role", cell: r => (r.actor?.role || "—").replaceAll("_", " ") },
    { title: "Action", cell: r => h("code", {}, r.action) },
    { title: "Target", cell: r => r.object_id ? h("code", {}, r.object_id.length > 24 ? r.object_id.slice(0, 24) + "…" : r.object_id) : "—" },
    { title: "Status", num: true, cell: r => String(r.status_code) },
  ];
  let list;
  form.addEventListener("submit", event => { event.preventDefault(); list.first(); });
  replace(root, section("Filters", form), section("Admin writes", listBox));
  list = pager(listBox, async page => {
    const answer = await get("/audit/logs", { ...values(form), page, page_size: 50 });
    return { rows: answer.audit_logs, hasMore: answer.has_more };
  }, rows => table(columns, rows, { caption: "Audit log", empty: "No admin writes recorded yet." }));
  await list.first();
}
