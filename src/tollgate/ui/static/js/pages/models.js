// Models: what the gateway serves (config and database models; upstream secrets are never sent
// by the API, only "********"). Admins add, edit and delete database models.
import { get, post } from "../api.js";
import { button, field, h, replace, section, status, values } from "../dom.js";
import * as fmt from "../format.js";
import { createForm, errorText } from "../forms.js";
import { table } from "../table.js";

export async function render(root, ctx) {
  const notice = h("div", { "aria-live": "polite" });
  const listBox = h("div");
  const usable = new Set((await get("/v1/models")).data.map(m => m.id));

  async function load() {
    const info = await get("/model/info");
    const rows = info.data.filter(m => ctx.readsAll || usable.has(m.model_name));
    replace(listBox, table(columns, rows, { caption: "Models",
      empty: ctx.canWrite ? "No models yet. Add one below, or list them in the config file's model_list."
        : "No models are available to you; ask an admin for access." }));
  }

  async function remove(row) {
    if (!confirm(`Delete the model ${row.model_name} (${row.model_info.id})?`)) return;
    try {
      await post("/model/delete", { id: row.model_info.id });
      replace(notice, status(`Model ${row.model_name} deleted.`, "ok"));
      await load();
    } catch (err) {
      replace(notice, status(errorText(err), "error"));
    }
  }

  function edit(row) {
    const p = row.litellm_params;
    const form = createForm(`Edit ${row.model_name}`, [
      field("Public model name", "model_name", { value: row.model_name, required: true }),
      field("API base", "api_base", { value: p.api_base || "" }),
      field("New API key", "api_key", { kind: "password", help: "Leave empty to keep the stored key." }),
      field("Input cost per token (USD)", "input_cost_per_token", { kind: "number", step: "any",
        value: row.model_info.input_cost_per_token ?? "" }),
      field("Output cost per token (USD)", "output_cost_per_token", { kind: "number", step: "any",
        value: row.model_info.output_cost_per_token ?? "" }),
    ], async f => {
      const v = values(f);
      const params = {};
      if (v.api_base) params.api_base = v.api_base;
      if (v.api_key) params.api_key = v.api_key;
      const info = {};
      for (const name of ["input_cost_per_token", "output_cost_per_token"]) if (v[name]) info[name] = Number(v[name]);
      await post("/model/update", { id: row.model_info.id, model_name: v.model_name, litellm_params: params,
        model_info: info });
      await load();
      return status(`Model ${v.model_name} saved.`, "ok");
    }, { open: true, submitText: "Save" });
    replace(notice, form);
  }

  const columns = [
    { title: "Model", cell: r => r.model_name },
    { title: "Upstream", cell: r => h("code", {}, r.litellm_params.model || "") },
    { title: "API base", cell: r => r.litellm_params.api_base || "—" },
    { title: "Mode", cell: r => r.model_info.mode || "chat" },
    { title: "Input price", num: true, cell: r => price(r.model_info.input_cost_per_token) },
    { title: "Output price", num: true, cell: r => price(r.model_info.output_cost_per_token) },
    { title: "Source", cell: r => r.model_info.db_model ? "database" : "config file" },
    { title: "", cell: r => ctx.canWrite && r.model_info.db_model ? h("div", { class: "row-actions" },
      button("Edit", () => edit(r), { label: `Edit model ${r.model_name}` }),
      button("Delete", () => remove(r), { kind: "danger", label: `Delete model ${r.model_name}` })) : "" },
  ];
  const parts = [];
  if (ctx.canWrite) {
    const stored = ctx.session.store_model_in_db;
    parts.push(createForm("Add a model", [
      stored ? null : status("general_settings.store_model_in_db is off: added models are kept in the database " +
        "and served, but the config file stays the usual place for models."),
      field("Public model name", "model_name", { required: true, placeholder: "e.g. claude-sonnet" }),
      field("Upstream model", "model", { required: true, placeholder: "e.g. bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        help: "LiteLLM's provider/model string: openai/…, anthropic/…, bedrock/…" }),
      field("API base", "api_base", { placeholder: "optional" }),
      field("API key", "api_key", { kind: "password", help: "Stored in the database; never shown again." }),
      field("Input cost per token (USD)", "input_cost_per_token", { kind: "number", step: "any" }),
      field("Output cost per token (USD)", "output_cost_per_token", { kind: "number", step: "any" }),
    ].filter(Boolean), async form => {
      const v = values(form);
      const params = { model: v.model };
      if (v.api_base) params.api_base = v.api_base;
      if (v.api_key) params.api_key = v.api_key;
      const info = {};
      for (const name of ["input_cost_per_token", "output_cost_per_token"]) if (v[name]) info[name] = Number(v[name]);
      await post("/model/new", { model_name: v.model_name, litellm_params: params, model_info: info });
      await load();
      return status(`Model ${v.model_name} added.`, "ok");
    }));
  }
  parts.push(notice, section(ctx.readsAll ? "All models" : "Models you may use", listBox));
  replace(root, ...parts);
  await load();
}

function price(perToken) {
  if (perToken === null || perToken === undefined) return "bundled price";
  return `${fmt.usd(Number(perToken) * 1e6)} / 1M tokens`;
}
