// The server's numbers: GET /v1/stats, read once a second while the tab is visible and shared
// by every part of the page. A short request each time, not a held connection (/v1/stats/live):
// a browser allows six connections to a host across all its tabs, and a stream page's live tail
// holds one already. A hidden tab reads nothing; shown again, it reads at once.

import { api } from "./api.js";
import { sleep, whenVisible } from "./dom.js";

const EVERY = 1000; // the server takes one sample a second
const TIMEOUT = 10000; // a read unanswered by then failed: the server is stuck, or unreachable
const listeners = new Set();
const stateListeners = new Set();
let running = false;
let wake = null; // ends the wait before the next read

/** The latest snapshot (GET /v1/stats's shape), the rate series, and the connection state:
 * "connecting", "open", "reconnecting", "paused" (the tab is hidden) or "closed". */
export const stats = {
  latest: null,
  appends: [],
  deliveries: [],
  end: null,
  state: "connecting",
  error: null,
};

function receive(snapshot) {
  // Each answer carries the whole rate history (five minutes): no series to stitch together.
  stats.appends = snapshot.rates.appends_per_second;
  stats.deliveries = snapshot.rates.deliveries_per_second;
  stats.end = snapshot.rates.end;
  stats.latest = snapshot;
  for (const listener of listeners) listener(stats);
}

function setState(state, error = null) {
  if (state === stats.state && error === stats.error) return;
  stats.state = state;
  stats.error = error;
  for (const listener of stateListeners) listener(state);
}

async function run() {
  let failures = 0;
  for (;;) {
    if (document.hidden) {
      setState("paused", stats.error);
      await whenVisible();
    }
    try {
      const snapshot = await api("/v1/stats", { signal: AbortSignal.timeout(TIMEOUT) });
      failures = 0;
      setState("open");
      receive(snapshot);
    } catch (error) {
      failures += 1;
      // A 4xx would only repeat (429 aside): say so and stop.
      if (error.status >= 400 && error.status < 500 && error.status !== 429) {
        setState("closed", error);
        return;
      }
      setState("reconnecting", error);
    }
    wake = new AbortController();
    await sleep(failures ? Math.min(EVERY * 2 ** Math.min(failures - 1, 4), 15000) : EVERY, wake.signal);
  }
}

/** Read now, not at the next second: something else found the server unreachable, and the
 * state must say so (a blip shorter than a second would pass unseen between two reads). */
export function readNow() {
  wake?.abort();
}

function ensureRunning() {
  if (running) return;
  running = true;
  run();
}

/** Call `listener(stats)` on every new snapshot (at once, if there is one). Returns unsubscribe. */
export function onStats(listener) {
  ensureRunning();
  listeners.add(listener);
  if (stats.latest) listener(stats);
  return () => listeners.delete(listener);
}

export function onConnection(listener) {
  ensureRunning();
  stateListeners.add(listener);
  listener(stats.state);
  return () => stateListeners.delete(listener);
}
