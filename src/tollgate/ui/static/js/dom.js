// Building DOM without innerHTML: text is always text, so nothing a user typed can become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let fieldCount = 0;

// A labelled form field. kind: text | number | password | select | textarea | date | datetime-local.
export function field(label, name, { kind = "text", value = "", options = [], help = "", required = false,
  placeholder = "", step = null, min = null } = {}) {
  const id = `f-${name}-${++fieldCount}`;
  let input;
  if (kind === "select") {
    input = h("select", { id, name, required },
      options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text)));
  } else if (kind === "textarea") {
    input = h("textarea", { id, name, required, placeholder, rows: 4 }, value);
  } else {
    input = h("input", { id, name, type: kind, value, required, placeholder, step, min,
      autocomplete: kind === "password" ? "new-password" : "off" });
  }
  const helpId = help ? `${id}-help` : null;
  if (helpId) input.setAttribute("aria-describedby", helpId);
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    help ? h("small", { id: helpId, class: "muted" }, help) : null);
}

// Values of a form as an object of trimmed strings (empty fields left out).
export function values(form) {
  const out = {};
  for (const [name, value] of new FormData(form).entries()) {
    const text = String(value).trim();
    if (text !== "") out[name] = text;
  }
  return out;
}

export function status(message, kind = "info") {
  return h("p", { class: `status ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}

export function button(text, onClick, { kind = "", label = null, type = "button" } = {}) {
  return h("button", { type, class: kind, onclick: onClick, "aria-label": label }, text);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}
