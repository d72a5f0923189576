// Tables that never hold more than one page: the server pages, filters and counts.
import { button, h, replace } from "./dom.js";

// columns: [{ title, cell: row => node|string, num?: bool }]
export function table(columns, rows, { caption = "", empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption || "table" },
    h("table", {},
      caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map(c => h("th", { scope: "col", class: c.num ? "num" : "" }, c.title)))),
      h("tbody", {}, rows.map(row => h("tr", {}, columns.map(c =>
        h("td", { class: c.num ? "num" : "", "data-label": c.title }, c.cell(row))))))));
}

// A list view with a page loader: load(page) → { rows, page, hasMore, total? }.
export function pager(container, load, render) {
  let page = 1;
  const nav = h("nav", { class: "pager", "aria-label": "Pages" });
  const body = h("div", { "aria-live": "polite" });
  async function show(next) {
    page = next;
    replace(body, h("p", { class: "muted" }, "Loading…"));
    try {
      const result = await load(page);
      replace(body, render(result.rows));
      const total = result.totalPages ? ` of ${result.totalPages}` : "";
      replace(nav,
        button("Previous page", () => show(page - 1), { kind: "ghost" }),
        h("span", { class: "muted" }, `Page ${page}${total}`),
        button("Next page", () => show(page + 1), { kind: "ghost" }));
      nav.children[0].disabled = page <= 1;
      nav.children[2].disabled = !result.hasMore;
    } catch (err) {
      replace(body, h("p", { class: "status error", role: "alert" }, err.message));
    }
  }
  replace(container, body, nav);
  return { reload: () => show(page), first: () => show(1) };
}
