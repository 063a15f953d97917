// History-API navigation under /dashboard: pages call navigate(); main.js renders.

let renderer = () => {};

/** main.js registers the function that renders the current location. */
export function setRenderer(render) {
  renderer = render;
}

/** Go to `url` (a /dashboard path, maybe with a query) without reloading. */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  renderer();
}

/** Change the query of the current page without a new history entry or a re-render; `state`
 * is kept with the entry, so a reload or a return to it finds it in `history.state`. */
export function setQuery(query, state = null) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  history.replaceState(state, "", location.pathname + (text ? `?${text}` : ""));
}
