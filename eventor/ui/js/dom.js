// DOM building without HTML strings: every piece of data becomes a text node or an attribute,
// never markup. This module is the only place elements are made.

/**
 * h("a", {href, class, onclick, ...}, ...children): an element.
 * Children: strings and numbers (text), nodes, arrays, null/undefined/false (skipped).
 * Attributes: "class", "text", "dataset", on<event> handlers, booleans (present/absent), else set.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false || key === "value") continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    // Styles through the CSSOM: the page's CSP forbids inline style attributes.
    else if (key === "style") for (const [name, v] of Object.entries(value)) el.style.setProperty(name, v);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string" && key !== "list") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  // After the children: a <select>'s value needs its options, a <textarea>'s is no attribute.
  if (attrs && attrs.value !== undefined && attrs.value !== null) el.value = String(attrs.value);
  return el;
}

/** An SVG element (same rules as h, attributes only). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) el.setAttribute(key, String(value));
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

/**
 * Replace `el`'s children. Those already in place at its start stay (not removed and put back),
 * so focus inside them stays too: fill(main, head, content) keeps focus on the page's heading.
 */
export function fill(el, ...children) {
  const nodes = children.flat(Infinity);
  let kept = 0;
  while (kept < nodes.length && nodes[kept] instanceof Node && el.childNodes[kept] === nodes[kept]) kept += 1;
  if (!kept) el.replaceChildren();
  while (el.childNodes.length > kept) el.lastChild.remove();
  return append(el, nodes.slice(kept));
}

const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";

/**
 * fill(el, ...children) for a view drawn anew at each refresh, keeping the reader's place in it:
 * the <details> they opened and the control they focused are found again in the new view by
 * the data-key of their row (and their place in it). A redraw lost both.
 */
export function refill(el, ...children) {
  const place = (node) => {
    const row = node.closest("[data-key]");
    return row && `${row.dataset.key}\n${[...row.querySelectorAll(`details, ${FOCUSABLE}`)].indexOf(node)}`;
  };
  const open = new Set([...el.querySelectorAll("details[open]")].map(place));
  const active = el.contains(document.activeElement) ? place(document.activeElement) : null;
  fill(el, ...children);
  if (!open.size && !active) return el;
  for (const node of el.querySelectorAll(`[data-key] :is(details, ${FOCUSABLE})`)) {
    const at = place(node);
    if (node.tagName === "DETAILS" && open.has(at)) node.open = true;
    if (at === active) node.focus({ preventScroll: true });
  }
  return el;
}

/** A path segment, encoded for a URL (stream and subscription names are untrusted). */
export const seg = (text) => encodeURIComponent(text);

export const streamHref = (name) => `/dashboard/streams/${seg(name)}`;
export const subscriptionHref = (name) => `/dashboard/subscriptions/${seg(name)}`;
/** "." and "..": valid subscription names, but dot segments that browsers drop from every URL
 * (as "%2e" and "%2e%2e"), so no dashboard address (nor fetch() path) can hold them. */
export const isDotSegment = (name) => name === "." || name === "..";

const numberFormat = new Intl.NumberFormat("en-US");
const rateFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

export const fmtNumber = (n) => (n === null || n === undefined ? "—" : numberFormat.format(n));
export const fmtRate = (n) => (n === null || n === undefined ? "—" : rateFormat.format(n));

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

export function fmtDuration(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

/** "12 s ago" for an RFC 3339 time (the server's clock, our clock: close enough for a glance). */
export function ago(iso) {
  if (!iso) return "never";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (Number.isNaN(seconds)) return iso;
  if (seconds <= -1) return `in ${fmtDuration(-seconds)}`; // a time to come: a retry
  if (seconds < 2) return "just now";
  return `${fmtDuration(seconds)} ago`;
}

/** A <time> showing "… ago", kept fresh by refreshTimes(), with the exact time on hover. */
export function timeAgo(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  return h("time", { datetime: iso, title: iso, dataset: { ago: "" } }, ago(iso));
}

export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-ago]")) el.textContent = ago(el.dateTime);
}

/** Debounce `fn` by `ms`. */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** `fn`, run at the next animation frame however often the function returned is called until
 * then: a burst of live events is drawn once a frame, not once an event. */
export function perFrame(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}

/** `fn`, run at once, or (called again within `ms`) once more when `ms` have passed, however
 * often it was called meanwhile. Returns the function, and a way to cancel the late run. */
export function throttle(fn, ms) {
  let last = -Infinity;
  let timer = null;
  const run = () => {
    timer = null;
    last = performance.now();
    fn();
  };
  const call = () => {
    if (timer !== null) return;
    const wait = last + ms - performance.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves once the page is visible (at once when it is), or when `signal` aborts. */
export function whenVisible(signal) {
  return new Promise((resolve) => {
    const check = () => {
      if (document.hidden && !signal?.aborted) return;
      document.removeEventListener("visibilitychange", check);
      signal?.removeEventListener("abort", check);
      resolve();
    };
    document.addEventListener("visibilitychange", check);
    signal?.addEventListener("abort", check);
    check();
  });
}

/** A page's heading, focusable so navigation can move focus to it. */
export function pageTitle(text, ...extra) {
  return h("h1", { class: "page-title", tabindex: "-1" }, text, ...extra);
}

export const STREAM_NAME = /^[A-Za-z0-9_:][A-Za-z0-9_.:-]{0,199}$/;
export const SUBSCRIPTION_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
