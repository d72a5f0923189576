// The UI shell: who is signed in, the navigation their role allows, and a router that draws the
// page the URL names (/ui/<page>). Pages are ES modules loaded when first visited.

import { at, get, post, ROOT, setCsrf } from "./api.js";
import { button, h, replace, status } from "./dom.js";
import { renderLogin } from "./pages/login.js";

const ADMINS = ["proxy_admin", "proxy_admin_viewer"];
const EVERYONE = [...ADMINS, "internal_user", "internal_user_viewer"];
const PAGES = [
  { path: "keys", title: "Keys", roles: EVERYONE, load: () => import("./pages/keys.js") },
  { path: "teams", title: "Teams", roles: ADMINS, load: () => import("./pages/teams.js") },
  { path: "users", title: "Users", roles: ADMINS, load: () => import("./pages/users.js") },
  { path: "organizations", title: "Organizations", roles: ADMINS, load: () => import("./pages/organizations.js") },
  { path: "models", title: "Models", roles: EVERYONE, load: () => import("./pages/models.js") },
  { path: "usage", title: "Usage", roles: EVERYONE, load: () => import("./pages/usage.js") },
  { path: "logs", title: "Logs", roles: EVERYONE, load: () => import("./pages/logs.js") },
  { path: "playground", title: "Playground", roles: ["proxy_admin", "internal_user"],
    load: () => import("./pages/playground.js") },
  { path: "audit", title: "Audit", roles: ADMINS, load: () => import("./pages/audit.js") },
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
let session = null;

function currentPath() {
  const rest = location.pathname.slice(ROOT.length).replace(/^\/ui\/?/, "").replace(/\/$/, "");
  return rest || "keys";
}

export function navigate(path) {
  history.pushState({}, "", at(`/ui/${path}`));
  route();
}

function context() {
  const role = session.role;
  return {
    session,
    role,
    canWrite: role === "proxy_admin",
    readsAll: ADMINS.includes(role),
    canWriteOwnKeys: role === "proxy_admin" || role === "internal_user",
    navigate,
  };
}

function drawNav(active) {
  const allowed = PAGES.filter(p => p.roles.includes(session.role));
  replace(nav, h("ul", {}, allowed.map(p => h("li", {},
    h("a", { href: at(`/ui/${p.path}`), "aria-current": p.path === active ? "page" : null }, p.title)))));
  replace(who,
    h("span", { class: "muted" }, `${session.subject} · ${session.role.replaceAll("_", " ")}`),
    session.open ? null : button("Sign out", signOut, { kind: "ghost" }));
}

async function signOut() {
  await post("/ui/auth/logout").catch(() => null);
  session = null;
  setCsrf("");
  history.pushState({}, "", at("/ui/"));
  await boot();
}

async function refreshSession() {
  const answer = await get("/ui/auth/session");
  if (!answer.signed_in) return answer;
  session = answer;
  setCsrf(answer.csrf);
  return answer;
}

async function route() {
  let answer;
  try {
    answer = await refreshSession();  // renews the session cookie as the UI is used
  } catch (err) {
    replace(main, status(`Cannot reach the gateway: ${err.message}`, "error"));
    return;
  }
  if (!answer.signed_in) {
    session = null;
    replace(nav);
    replace(who);
    renderLogin(main, answer, boot);
    return;
  }
  const path = currentPath();
  drawNav(path);
  const page = PAGES.find(p => p.path === path);
  if (!page) {
    document.title = "Not found · tollgate";
    replace(main, h("h1", {}, "Page not found"), h("p", {}, "Choose a page from the navigation."));
    return;
  }
  document.title = `${page.title} · tollgate`;
  if (!page.roles.includes(session.role)) {
    replace(main, h("h1", {}, page.title),
      status(`Your role (${session.role.replaceAll("_", " ")}) may not open this page.`, "error"));
    return;
  }
  replace(main, h("h1", {}, page.title), h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await page.load();
    const body = h("div", { class: "page" });
    replace(main, h("h1", {}, page.title), body);
    await module.render(body, context());
  } catch (err) {
    replace(main, h("h1", {}, page.title), status(err.message, "error"));
  }
}

async function boot() {
  await route();
  main.focus({ preventScroll: true });
}

document.addEventListener("click", event => {
  const link = event.target.closest("a");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(at("/ui/")) || url.pathname.startsWith(at("/ui/static/"))) return;
  event.preventDefault();
  history.pushState({}, "", url.pathname + url.search);
  boot();
});
window.addEventListener("popstate", () => boot());
window.addEventListener("tollgate:signed-out", () => {
  if (session) boot();
});

boot();
