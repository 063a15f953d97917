// The server's numbers, live: one /v1/stats/live stream shared by every part of the page.

import { live } from "./api.js";

const KEEP = 300;
const listeners = new Set();
const stateListeners = new Set();
let stop = null;

/** The latest snapshot (GET /v1/stats's shape), the rate series, and the connection state. */
export const stats = {
  latest: null,
  appends: [],
  deliveries: [],
  end: null,
  state: "connecting",
  error: null,
};

function receive({ data }) {
  const snapshot = JSON.parse(data);
  const rates = snapshot.rates;
  const first = stats.latest === null || stats.fresh;
  stats.fresh = false;
  // The first message after a (re)connect carries the whole history; later ones the new samples.
  stats.appends = (first ? [] : stats.appends).concat(rates.appends_per_second).slice(-KEEP);
  stats.deliveries = (first ? [] : stats.deliveries).concat(rates.deliveries_per_second).slice(-KEEP);
  stats.end = rates.end;
  stats.latest = snapshot;
  stats.error = null;
  for (const listener of listeners) listener(stats);
}

function setState(state) {
  if (state !== "open") stats.fresh = true;
  stats.state = state;
  for (const listener of stateListeners) listener(state);
}

function ensureRunning() {
  if (stop) return;
  stop = live("/v1/stats/live", {
    onMessage: receive,
    onState: setState,
    onError: (error) => {
      stats.error = error;
      for (const listener of stateListeners) listener(stats.state);
    },
  });
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
