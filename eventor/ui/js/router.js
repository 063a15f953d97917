// History-API navigation under /dashboard: pages call navigate(); main.js renders.

let renderer = () => {};
let loadFailure = () => {};

/** main.js registers the function that renders the current location. */
export function setRenderer(render) {
  renderer = render;
}

/** main.js registers what is done when a page's first read found no server. */
export function setLoadFailure(handle) {
  loadFailure = handle;
}

/** A page whose first read failed for want of the server (no answer at all: `error` has no
 * status) says so in its place, then calls this: it is rendered again once the server answers.
 * Errors the server answered (a 404, say) stay said. */
export function retryWhenOnline(error) {
  if (!error?.status && error?.name !== "AbortError") loadFailure();
}

/** Go to `url` (a /dashboard path, maybe with a query) without reloading. */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  renderer();
}

/** Change the query of the current page without a re-render, and without a new history entry
 * unless `push` (then Back returns to the query before: see onQueryChange); `state` is kept with
 * the entry, so a reload or a return to it finds it in `history.state`. */
export function setQuery(query, state = null, { push = false } = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  const url = location.pathname + (text ? `?${text}` : "");
  if (push && url !== location.pathname + location.search) history.pushState(state, "", url);
  else history.replaceState(state, "", url);
}

let queryHandler = null; // { path, handle }: the page on screen follows its own query

/** While `signal` lasts, Back and Forward between entries of this page that differ only in
 * their query call `handle(query)` instead of rendering the page anew. */
export function onQueryChange(handle, signal) {
  const entry = { path: location.pathname, handle };
  queryHandler = entry;
  signal.addEventListener("abort", () => {
    if (queryHandler === entry) queryHandler = null;
  });
}

/** For main.js, on popstate: true when the page on screen took the new query itself. */
export function queryHandled() {
  if (!queryHandler || queryHandler.path !== location.pathname) return false;
  queryHandler.handle(new URLSearchParams(location.search));
  return true;
}
