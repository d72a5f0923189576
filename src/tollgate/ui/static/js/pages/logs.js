// Logs: recent requests, newest first, paged on the server: time, key alias, model, status,
// tokens, cost, latency; filters by key, team, model, status, time, and request id.
import { get } from "../api.js";
import { field, h, replace, section, status, values } from "../dom.js";
import * as fmt from "../format.js";
import { errorText } from "../forms.js";
import { pager, table } from "../table.js";

export async function render(root, ctx) {
  const models = (await get("/v1/models")).data.map(m => [m.id, m.id]);
  const form = h("form", { class: "grid-form filters" },
    field("Request ID", "request_id"),
    field("Key alias", "key_alias"),
    ctx.readsAll ? field("Team ID", "team_id") : null,
    field("Model", "model", { kind: "select", options: [["", "any model"], ...models] }),
    field("Status", "status_filter", { kind: "select", options: [["", "any"], ["success", "success"], ["failure", "failure"]] }),
    field("From", "start_date", { kind: "datetime-local" }),
    field("To", "end_date", { kind: "datetime-local" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Filter")));
  const listBox = h("div");
  const detail = h("div", { "aria-live": "polite" });
  let list;
  const columns = [
    { title: "Time", cell: r => h("button", { type: "button", class: "link", onclick: () => showDetail(r),
      "aria-label": `Details of request ${r.request_id}` }, fmt.when(r.startTime)) },
    { title: "Key", cell: r => r.key_alias || (r.api_key ? h("code", {}, r.api_key.slice(0, 10) + "…") : "—") },
    { title: "Model", cell: r => r.model_group || r.model },
    { title: "Status", cell: r => h("span", { class: r.status === "success" ? "badge ok" : "badge bad" },
      `${r.status_code} ${r.status}`) },
    { title: "Tokens", num: true, cell: r => `${fmt.count(r.prompt_tokens)} in / ${fmt.count(r.completion_tokens)} out` },
    { title: "Cost", num: true, cell: r => fmt.usd(r.spend) },
    { title: "Latency", num: true, cell: r => fmt.ms(fmt.latency(r)) },
  ];

  function showDetail(r) {
    replace(detail, section(`Request ${r.request_id}`, h("dl", { class: "pairs" },
      ...[["Request ID", r.request_id], ["Started", fmt.when(r.startTime)], ["Ended", fmt.when(r.endTime)],
        ["Model asked", r.requested_model || "—"], ["Deployment", r.model_id || "—"], ["User", r.user || "—"],
        ["Team", r.team_id || "—"], ["Tags", (r.request_tags || []).join(", ") || "—"],
        ["Attempts", r.metadata?.attempts ?? "—"], ["Error", r.metadata?.error_class || "—"],
        ["Streamed", r.stream ? "yes" : "no"], ["Cost", fmt.usd(r.spend)]]
        .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v)))))));
  }

  const iso = local => local ? new Date(local).toISOString() : undefined;
  form.addEventListener("submit", event => { event.preventDefault(); list.first(); });
  replace(root, section("Filters", form), section("Requests", listBox), detail);
  list = pager(listBox, async page => {
    const v = values(form);
    const answer = await get("/spend/logs/ui", { ...v, start_date: iso(v.start_date), end_date: iso(v.end_date),
      page, page_size: 50 });
    return { rows: answer.data, hasMore: answer.has_more };
  }, rows => table(columns, rows, { caption: "Requests",
    empty: "No requests match. Requests appear here a second or two after they finish." }));
  try {
    await list.first();
  } catch (err) {
    replace(listBox, status(errorText(err), "error"));
  }
}
