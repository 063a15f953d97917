// Every request the dashboard makes goes through send() below: the one place where an
// Authorization header will be added once the API has access tokens. Live updates are
// Server-Sent Events read over fetch() rather than EventSource for the same reason:
// EventSource cannot send headers.

import { sleep, whenVisible } from "./dom.js";
import { formatJson, parseJson } from "./json.js";

/** Headers added to every request (an access token will go here). */
function authHeaders() {
  return {};
}

/** An error answer from the API (or no answer at all: status 0), with a readable message. */
export class ApiError extends Error {
  constructor(status, message, problem = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function send(path, { method = "GET", body, headers = {}, query, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...authHeaders(), ...headers }, signal };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  try {
    return await fetch(withQuery(path, query), init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `Cannot reach the Eventor server (${error.message}). Is it running?`);
  }
}

/** The error an unsuccessful response stands for: problem+json's detail, or the text body. */
async function errorOf(response) {
  const text = await response.text().catch(() => "");
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      const problem = JSON.parse(text);
      const message = problem.detail || problem.title || text;
      return new ApiError(response.status, String(message), problem);
    } catch {
      // not JSON after all: fall through to the text
    }
  }
  const message = text.trim() || `${response.status} ${response.statusText}`;
  return new ApiError(response.status, message.slice(0, 2000));
}

// Only a position this long may be past 2^53 (a reset there): then the exact parse, else
// JSON.parse (the exact parse of 1,200 statuses took 90 ms, at each refresh of a list).
const LONG_POSITION = /"position":\s*-?\d{16}/;

/** Subscription statuses (one, or `{subscriptions: [...]}`) from their JSON text: each one's
 * `position` a BigInt, exact, and its other numbers JS numbers. */
function statuses(text) {
  const long = LONG_POSITION.test(text);
  const value = long ? parseJson(text) : JSON.parse(text);
  const status = (read) => {
    const plain = long ? JSON.parse(formatJson(read)) : read;
    plain.position = BigInt(String(read.position));
    return plain;
  };
  if (!Array.isArray(value.subscriptions)) return status(value);
  value.subscriptions = value.subscriptions.map(status);
  return value;
}

/**
 * api(path, {method, body, query, headers, signal, exact}) → the decoded JSON (or text, or null
 * on 204); `exact` keeps numbers a JS number would change as JsonNumber (for event data), and
 * `exact: "position"` reads subscription statuses: each `position` a BigInt, as a reset may put
 * it past 2^53, where a JS number would round it. Throws ApiError with the API's own message on
 * any non-2xx answer.
 */
export async function api(path, { exact = false, ...options } = {}) {
  const response = await send(path, options);
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  const text = await response.text();
  const type = response.headers.get("content-type") || "";
  if (!type.includes("json") || !text) return text;
  if (exact === "position") return statuses(text);
  return exact ? parseJson(text) : JSON.parse(text);
}

/**
 * live(path, {query, onMessage, onState, onError, signal}): a Server-Sent Events stream that
 * reconnects (backing off up to 15 s) and resumes after the last event id it saw. It is closed
 * while the tab is hidden and opened again, resuming so, once it is shown: a browser allows six
 * connections to a host across all its tabs, and held ones in background tabs left none for
 * the tab in use. onMessage({event, data, id});
 * onState("connecting" | "open" | "reconnecting" | "paused" | "closed").
 * Stops for good on a 4xx answer (it would only repeat) and when `signal` aborts.
 */
export function live(path, { query, onMessage, onState = () => {}, onError = () => {}, signal }) {
  const abort = new AbortController();
  let attempt = null; // the AbortController of the connection being made or read
  signal?.addEventListener("abort", () => abort.abort());
  abort.signal.addEventListener("abort", () => attempt?.abort());
  const onVisibility = () => document.hidden && attempt?.abort();
  document.addEventListener("visibilitychange", onVisibility);
  abort.signal.addEventListener("abort", () =>
    document.removeEventListener("visibilitychange", onVisibility),
  );
  let lastId = null;
  let retry = 1000;
  let failures = 0;

  const dispatch = (message) => {
    if (message.data.length === 0) return;
    onMessage({ event: message.event || "message", data: message.data.join("\n"), id: message.id });
  };

  async function read(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = { data: [], event: "", id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          dispatch(message);
          message = { data: [], event: "", id: null };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") message.data.push(text);
        else if (field === "event") message.event = text;
        else if (field === "id") message.id = lastId = text;
        else if (field === "retry" && /^\d+$/.test(text)) retry = Number(text);
      }
    }
  }

  (async () => {
    while (!abort.signal.aborted) {
      if (document.hidden) {
        onState("paused");
        await whenVisible(abort.signal);
        continue;
      }
      onState(failures ? "reconnecting" : "connecting");
      attempt = new AbortController();
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await send(path, {
          query: lastId === null ? query : undefined,
          headers,
          signal: attempt.signal,
        });
        if (!response.ok) {
          const error = await errorOf(response);
          onError(error);
          if (response.status >= 400 && response.status < 500 && response.status !== 429) {
            onState("closed");
            return;
          }
        } else {
          failures = 0;
          onState("open");
          await read(response);
        }
      } catch (error) {
        if (abort.signal.aborted) break;
        if (attempt.signal.aborted) continue; // closed as the tab was hidden: no failure
        if (!(error instanceof ApiError) && error.name !== "TypeError") onError(error);
      }
      if (abort.signal.aborted) break;
      if (attempt.signal.aborted) continue;
      failures += 1;
      onState("reconnecting");
      await sleep(Math.min(retry * 2 ** Math.min(failures - 1, 4), 15000), abort.signal);
    }
    onState("closed");
  })();
  return () => abort.abort();
}
