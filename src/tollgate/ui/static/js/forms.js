// Form pieces shared by keys, teams, users and organizations: the usage-plan fields (models,
// budget and its duration, rate limits) and their conversion to admin API bodies.
import { ApiError } from "./api.js";
import { field, h, replace, status } from "./dom.js";

export const DURATIONS = [["", "total (never resets)"], ["1d", "per day"], ["7d", "per week"],
  ["30d", "per 30 days"], ["1mo", "per calendar month"]];

export function policyFields({ models = [] } = {}) {
  const modelHelp = models.length ? `Comma separated; empty = all. Available: ${models.join(", ")}`
    : "Comma separated model names; empty = all models.";
  return [
    field("Models", "models", { help: modelHelp, placeholder: "e.g. gpt-4o-mini, claude-sonnet" }),
    field("Max budget (USD)", "max_budget", { kind: "number", step: "any", min: 0, placeholder: "e.g. 10" }),
    field("Budget duration", "budget_duration", { kind: "select", options: DURATIONS }),
    field("Requests per minute", "rpm_limit", { kind: "number", min: 1, step: 1 }),
    field("Tokens per minute", "tpm_limit", { kind: "number", min: 1, step: 1 }),
    field("Max parallel requests", "max_parallel_requests", { kind: "number", min: 1, step: 1 }),
  ];
}

export function policyBody(v) {
  const body = {};
  if (v.models) body.models = v.models.split(",").map(s => s.trim()).filter(Boolean);
  if (v.max_budget) body.max_budget = Number(v.max_budget);
  if (v.budget_duration) body.budget_duration = v.budget_duration;
  for (const name of ["rpm_limit", "tpm_limit", "max_parallel_requests"]) {
    if (v[name]) body[name] = Number.parseInt(v[name], 10);
  }
  return body;
}

// A <details> disclosure holding a form; submit(values) runs the write and returns a node to show.
export function createForm(summary, fields, submit, { open = false, submitText = "Create" } = {}) {
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "grid-form" }, ...fields,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submitText)));
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    replace(result);
    try {
      const shown = await submit(form);
      replace(result, shown || status("Saved.", "ok"));
      form.reset();
    } catch (err) {
      replace(result, status(err instanceof ApiError ? err.message : String(err), "error"));
    } finally {
      button.disabled = false;
    }
  });
  return h("details", { class: "card", open }, h("summary", {}, summary), form, result);
}

export function errorText(err) {
  return err instanceof ApiError ? err.message : String(err);
}
