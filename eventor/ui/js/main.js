// The dashboard's entry point: the router (history API, deep links under /dashboard), the
// navigation, the connection indicator, and errors nobody else caught.

import { fill, h, refreshTimes } from "./dom.js";
import { navigate, queryHandled, setLoadFailure, setRenderer } from "./router.js";
import { onConnection, onStats, readNow, stats } from "./stats.js";

const ROUTES = [
  [/^\/dashboard\/?$/, "overview", "Overview"],
  [/^\/dashboard\/streams\/?$/, "streams", "Streams"],
  [/^\/dashboard\/streams\/([^/]+)\/?$/, "stream", "Stream"],
  [/^\/dashboard\/subscriptions\/?$/, "subscriptions", "Subscriptions"],
  [/^\/dashboard\/subscriptions\/([^/]+)\/?$/, "subscription", "Subscription"],
  [/^\/dashboard\/new-subscription\/?$/, "subscription-form", "New subscription"],
];
const NAV_SECTION = {
  stream: "streams",
  subscription: "subscriptions",
  "subscription-form": "subscriptions",
};

const main = document.getElementById("main");
let current = null; // the AbortController of the page on screen
let firstRender = true;
let loadFailed = false; // #main says the page could not be loaded: render again once online
let readFailed = false; // ... for its data's first read found no server (see retryWhenOnline)

function match(pathname) {
  for (const [pattern, page, title] of ROUTES) {
    const found = pattern.exec(pathname);
    if (!found) continue;
    try {
      return { page, title, params: found.slice(1).map(decodeURIComponent) };
    } catch {
      return null; // a malformed %-escape
    }
  }
  return null;
}

async function render() {
  current?.abort();
  // A dialog belongs to the page that opened it: left open over the next one (Back while it
  // asked), its button would act for a page that is gone, and do nothing.
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  loadFailed = readFailed = false;
  fill(document.getElementById("global-error"));
  const controller = new AbortController();
  current = controller;
  const route = match(location.pathname);
  const section = route ? NAV_SECTION[route.page] || route.page : "";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const setTitle = (text) => {
    document.title = `${text} · Eventor`;
  };
  if (!route) {
    setTitle("Not found");
    fill(
      main,
      h("h1", { class: "page-title", tabindex: "-1" }, "Page not found"),
      h(
        "p",
        {},
        "Nothing lives at this address. ",
        h("a", { href: "/dashboard" }, "Back to the overview"),
        ".",
      ),
    );
    return;
  }
  setTitle(route.title);
  let module;
  try {
    module = await import(`./pages/${route.page}.js`);
  } catch (error) {
    // The previous page is aborted already: its controls would do nothing. Say so in its place.
    if (!controller.signal.aborted) showLoadFailure(error);
    return;
  }
  if (controller.signal.aborted) return;
  try {
    fill(main);
    module.default(main, {
      params: route.params,
      query: new URLSearchParams(location.search),
      signal: controller.signal,
      setTitle,
    });
  } catch (error) {
    showGlobalError(error);
    return;
  }
  // Move focus to the new page (for screen readers and keyboards), unless the page took it.
  if (!firstRender && !main.contains(document.activeElement))
    (main.querySelector("h1") || main).focus({ preventScroll: true });
  firstRender = false;
  window.scrollTo(0, 0);
}

function showLoadFailure(error) {
  loadFailed = true;
  readNow(); // "open" again once the server answers: then the page is loaded again
  fill(
    main,
    h("h1", { class: "page-title", tabindex: "-1" }, "This page could not be loaded"),
    h(
      "div",
      { class: "alert alert-error", role: "alert", id: "load-error" },
      h("strong", {}, "Could not load it: "),
      String(error?.message || error),
    ),
    h(
      "p",
      {},
      "It loads by itself once the server can be reached again, or ",
      h("button", { type: "button", class: "btn btn-small", id: "load-retry", onclick: render }, "Try again"),
      ".",
    ),
  );
  if (!firstRender) main.querySelector("h1").focus({ preventScroll: true });
}

function showGlobalError(error) {
  fill(
    document.getElementById("global-error"),
    h(
      "div",
      { class: "alert alert-error", role: "alert" },
      h("strong", {}, "Something went wrong in the dashboard: "),
      String(error?.message || error),
      " ",
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          onclick: () => fill(document.getElementById("global-error")),
        },
        "Dismiss",
      ),
    ),
  );
}

document.addEventListener("click", (event) => {
  if (
    event.defaultPrevented ||
    event.button !== 0 ||
    event.metaKey ||
    event.ctrlKey ||
    event.shiftKey ||
    event.altKey
  )
    return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !/^\/dashboard(\/|$)/.test(url.pathname)) return;
  event.preventDefault();
  if (url.hash && url.pathname + url.search === location.pathname + location.search) {
    // A link within the page (the skip link): focus its target. Not by changing location.hash,
    // which would add a history entry that re-renders the page.
    const target = document.getElementById(decodeURIComponent(url.hash.slice(1)));
    target?.focus();
    target?.scrollIntoView({ block: "start" });
    return;
  }
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => queryHandled() || render());
setRenderer(render);
setLoadFailure(() => {
  loadFailed = readFailed = true;
  readNow(); // the header says at once whether the server is reachable
});
window.addEventListener("unhandledrejection", (event) => showGlobalError(event.reason));
window.addEventListener("error", (event) => showGlobalError(event.error || event.message));

const STATE_TEXT = {
  connecting: "Connecting…",
  open: "Live",
  reconnecting: "Reconnecting…",
  paused: "Paused while hidden",
  closed: "Offline",
};
const connection = document.getElementById("connection");
onConnection((state) => {
  connection.dataset.state = state;
  const text =
    stats.error && state !== "open" ? `${STATE_TEXT[state]} (${stats.error.message})` : STATE_TEXT[state];
  connection.querySelector(".conn-text").textContent = text;
  connection.title = state === "open" ? "Receiving live updates" : text;
  if (state === "open" && loadFailed) render();
});
// The server answers: a page whose read failed in a blip the header never saw reads again.
// (A page whose code did not come waits for the connection to come back, or Try again.)
onStats(() => {
  if (readFailed) render();
});
setInterval(() => refreshTimes(main), 5000);

render();
