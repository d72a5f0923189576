// The sign-in page: username and password (UI_USERNAME / UI_PASSWORD, or the master key), and
// "Sign in with SSO" when an identity provider is configured.
import { ApiError, at, request } from "../api.js";
import { field, h, replace, status, values } from "../dom.js";

export function renderLogin(main, answer, onSignedIn) {
  document.title = "Sign in · tollgate";
  const message = h("div", { "aria-live": "assertive" });
  const ssoError = new URLSearchParams(location.search).get("sso_error");
  if (ssoError) replace(message, status(`Single sign-on failed: ${ssoError}`, "error"));
  const form = h("form", { class: "signin", novalidate: true },
    field("Username", "username", { required: true }),
    field("Password", "password", { kind: "password", required: true }),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.querySelector("input[name=password]").setAttribute("autocomplete", "current-password");
  form.querySelector("input[name=username]").setAttribute("autocomplete", "username");
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const { username = "", password = "" } = values(form);
    replace(message);
    try {
      await request("POST", "/ui/auth/login", { body: { username, password },
        headers: { "x-csrf-token": answer.login_csrf } });
      history.replaceState({}, "", location.pathname.startsWith(at("/ui/")) ? location.pathname : at("/ui/"));
      await onSignedIn();
    } catch (err) {
      replace(message, status(err instanceof ApiError ? err.message : String(err), "error"));
      form.querySelector("input[name=password]").value = "";
      form.querySelector("input[name=password]").focus();
    }
  });
  replace(main,
    h("h1", {}, "Sign in to tollgate"),
    message,
    answer.password_login === false ? status("Password sign-in is off: set UI_PASSWORD or a master key.") : form,
    answer.sso ? h("p", {}, h("a", { class: "button", href: at("/sso/key/generate") }, "Sign in with SSO")) : null);
  form.querySelector("input[name=username]")?.focus();
}
