// Playground: chat with a model you may use, as yourself (the session is the credential, so your
// user's models, limits and budgets apply and the spend is yours). The answer streams in; its
// tokens come with the stream, its cost from the spend log once it is recorded.
import { get, request } from "../api.js";
import { button, field, h, replace, section, status } from "../dom.js";
import * as fmt from "../format.js";
import { errorText } from "../forms.js";

export async function render(root) {
  const models = (await get("/v1/models")).data.map(m => m.id).filter(id => !/embed/i.test(id));
  if (!models.length) {
    replace(root, h("p", { class: "empty" }, "No chat models are available to you. Ask an admin to grant one."));
    return;
  }
  const history = [];
  const transcript = h("div", { class: "transcript", "aria-live": "polite" });
  const stats = h("p", { class: "muted", "data-testid": "playground-stats" });
  const form = h("form", { class: "chat" },
    field("Model", "model", { kind: "select", options: models.map(m => [m, m]) }),
    field("Message", "message", { kind: "textarea", required: true, placeholder: "Ask something…" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Send"),
      button("New chat", () => { history.length = 0; replace(transcript); replace(stats); }, { kind: "ghost" })));
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const model = form.elements.model.value;
    const text = form.elements.message.value.trim();
    if (!text) return;
    form.elements.message.value = "";
    history.push({ role: "user", content: text });
    transcript.append(h("div", { class: "msg user" }, h("strong", {}, "You: "), text));
    const answer = h("span", { "data-testid": "answer" });
    transcript.append(h("div", { class: "msg assistant" }, h("strong", {}, `${model}: `), answer));
    replace(stats, "Waiting for the answer…");
    const send = form.querySelector("button[type=submit]");
    send.disabled = true;
    try {
      const { content, usage, requestId } = await stream(model, history, delta => answer.append(delta));
      history.push({ role: "assistant", content });
      replace(stats, usage ? `${fmt.tokens(usage.prompt_tokens)} in, ${fmt.tokens(usage.completion_tokens)} out · cost: recording…` : "");
      const cost = await costOf(requestId);
      replace(stats, `${usage ? `${fmt.tokens(usage.prompt_tokens)} in, ${fmt.tokens(usage.completion_tokens)} out · ` : ""}` +
        `cost ${cost === null ? "not recorded yet (see Logs)" : fmt.usd(cost)}`);
    } catch (err) {
      replace(stats, status(errorText(err), "error"));
    } finally {
      send.disabled = false;
    }
  });
  replace(root, section("Chat", form, transcript, stats));
}

async function stream(model, messages, onDelta) {
  const response = await request("POST", "/v1/chat/completions", { raw: true,
    body: { model, messages, stream: true, stream_options: { include_usage: true } } });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.error?.message || `${response.status} ${response.statusText}`);
  }
  const requestId = response.headers.get("x-request-id");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", content = "", usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          content += delta;
          onDelta(delta);
        }
        if (chunk.usage) usage = chunk.usage;
      }
    }
  }
  return { content, usage, requestId };
}

// The spend log is written in batches off the request path: look for the row for a few seconds.
async function costOf(requestId) {
  if (!requestId) return null;
  for (let attempt = 0; attempt < 12; attempt++) {
    const rows = await get("/spend/logs", { request_id: requestId }).catch(() => []);
    if (rows.length) return rows[0].spend;
    await new Promise(resolve => setTimeout(resolve, 500));
  }
  return null;
}
