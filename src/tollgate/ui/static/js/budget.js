// Budget status of one entity: spent in the current window, remaining, and when it resets.
import { get } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";
import { errorText } from "./forms.js";

export async function budgetStatus(params) {
  let answer;
  try {
    answer = await get("/ui/api/budget", params);
  } catch (err) {
    return h("p", { class: "status error", role: "alert" }, errorText(err));
  }
  const name = answer.alias || answer.entity_id;
  const plan = answer.usage_plan ? planView(answer.usage_plan) : null;
  if (!answer.budgets.length) {
    return h("div", { class: "budget" }, h("p", {}, `${answer.entity_type} ${name}: no budget set. `,
      `Spent ${fmt.usd(answer.lifetime_spend)} in total.`), plan);
  }
  return h("div", { class: "budget" }, plan, h("p", {}, `${answer.entity_type} ${name}: spent ${fmt.usd(answer.lifetime_spend)} in total.`),
    h("ul", {}, answer.budgets.map(b => {
      const used = b.max_budget ? Math.min(1, b.spent / b.max_budget) : 0;
      return h("li", {},
        h("meter", { min: 0, max: 1, low: 0.75, high: 0.9, optimum: 0, value: used,
          "aria-label": `${Math.round(used * 100)}% of ${fmt.budget(b.max_budget, b.duration)} used` }),
        ` ${fmt.usd(b.spent)} of ${fmt.budget(b.max_budget, b.duration)} spent · `,
        h("strong", {}, `${fmt.usd(b.remaining)} remaining`),
        b.reset_at ? ` · resets ${fmt.when(b.reset_at)}` : " · never resets");
    })));
}

function planView(doc) {
  const limits = doc.default_limits || {};
  return h("div", { class: "plan" }, h("h3", {}, "Usage plan"),
    h("p", {}, `${doc.entity_type || ""} plan · models: ${(doc.model_permissions || ["all"]).join(", ")} · `,
      `${fmt.limit(limits.rpm, "rpm")}, ${fmt.limit(limits.tpm, "tpm")} · `,
      (doc.budgets || []).map(b => fmt.budget(b.max_budget, b.duration)).join(", ") || "no plan budget",
      doc.active === false ? " · inactive" : ""));
}
