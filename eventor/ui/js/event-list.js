// A stream's events, newest first: pages of PAGE, jump to a position, and a live tail that
// puts new events on top as they are appended (over SSE, resuming after a reconnect). The page
// shown is kept in the query (?from=N: read back from N; ?at=N: jumped to N) for reloads and links.

import { api, live } from "./api.js";
import { fill, fmtNumber, h, perFrame, seg } from "./dom.js";
import { eventItem } from "./event-view.js";
import { parseJson } from "./json.js";
import { onQueryChange, setQuery } from "./router.js";
import { onConnection } from "./stats.js";
import { emptyState, errorBox, loading } from "./ui.js";

const PAGE = 25;
const CONTEXT = Math.floor(PAGE / 2); // newer events shown above a jumped-to one
const MAX_ROWS = 250; // the live tail drops the oldest rows past this

// Positions a link may hold: exact as JavaScript numbers (15 digits; 2^53 is 16).
const positionIn = (text) => (/^[1-9]\d{0,14}$/.test(text || "") ? Number(text) : null);
const usable = (button) => !button.disabled && !button.closest("[hidden]");

/**
 * eventList(stream, {head, query, signal, onEvent, onHead}) → an element. `head` is the stream's
 * head when the page loaded (0 for a stream with no events); `query` the page's, which may say
 * where to start (?at= or ?from=); onEvent(event) hears each live event, onHead(head) each head a
 * page read found (it may have grown while the tail was off).
 */
export function eventList(stream, { head, query, signal, onEvent = () => {}, onHead = () => {} }) {
  const base = `/v1/streams/${seg(stream)}`;
  const state = { head, from: null, newest: 0, oldest: 0, pending: 0, liveStop: null };
  let reads = 0; // page reads begun: only the latest one's answer is shown
  let arrived = null; // live events come while the newest page is read: shown on top of it
  let fresh = []; // live events for the newest page, put on top of it at the next frame

  const list = h("ol", { class: "events", id: "events", "aria-label": "Events, newest first" });
  const status = h("div", { class: "card-body", id: "events-status" });
  const liveToggle = h("input", { type: "checkbox", role: "switch", id: "live-toggle", checked: true });
  const liveState = h("span", { class: "hint", id: "live-state" });
  const jumpInput = h("input", {
    class: "input",
    type: "number",
    min: "1",
    id: "jump-position",
    inputmode: "numeric",
    placeholder: "#",
  });
  const newer = h(
    "button",
    { type: "button", class: "btn btn-small", onclick: () => turn(state.newest + PAGE, newer, older) },
    "← Newer",
  );
  const older = h(
    "button",
    { type: "button", class: "btn btn-small", onclick: () => turn(state.oldest - 1, older, newer) },
    "Older →",
  );
  const newest = h(
    "button",
    { type: "button", class: "btn btn-small", onclick: () => turn(null, newest, older) },
    "Newest",
  );
  const range = h("span", { id: "events-range" });
  const banner = h("div", { class: "new-events", hidden: true });

  const jump = h(
    "form",
    { class: "jump", role: "search", novalidate: true },
    h("label", { for: "jump-position", class: "hint" }, "Jump to"),
    jumpInput,
    h("button", { type: "submit", class: "btn btn-small" }, "Go"),
  );
  jump.addEventListener("submit", (event) => {
    event.preventDefault();
    const position = Number(jumpInput.value);
    if (!Number.isSafeInteger(position) || position < 1) {
      jumpInput.setAttribute("aria-invalid", "true");
      fill(status, errorBox(new Error("Give a position: a whole number from 1."), "Cannot jump"));
      return;
    }
    jumpInput.removeAttribute("aria-invalid");
    goTo(position, { focus: true, push: true });
  });

  const element = h(
    "div",
    {},
    h(
      "div",
      { class: "card-body toolbar" },
      h("label", { class: "switch" }, liveToggle, "Live tail"),
      liveState,
      jump,
    ),
    status,
    banner,
    list,
    h("div", { class: "pager" }, range, h("div", { class: "pager-buttons" }, newest, newer, older)),
  );

  function updatePager() {
    const atNewest = state.from === null || state.newest >= state.head;
    newer.disabled = atNewest;
    newest.disabled = atNewest;
    older.disabled = state.oldest <= 1;
    fill(
      range,
      state.newest
        ? `Showing #${fmtNumber(state.oldest)}–#${fmtNumber(state.newest)} of ${fmtNumber(state.head)}`
        : "",
    );
  }

  /** A page with `position` near its middle (a full one near the start), highlighted. */
  async function goTo(position, { focus = false, push = false } = {}) {
    const shown = await page(Math.max(position + CONTEXT, PAGE), { target: position, focus, push });
    if (shown && position > state.head && state.head > 0)
      fill(
        status,
        h(
          "p",
          { class: "hint card-body", role: "status", id: "jump-past-head" },
          `There is no #${fmtNumber(position)} yet: the stream ends at #${fmtNumber(state.head)}, shown here.`,
        ),
      );
  }

  /** A pager button's page; should the button disable (or hide) itself, focus goes to
   * `fallback`, else to the first event, not to <body>. */
  async function turn(from, button, fallback = null) {
    const hadFocus = document.activeElement === button;
    await page(from, { push: true });
    if (!hadFocus || usable(button)) return;
    // Only if the focus is still lost with the button: not if the user went on elsewhere.
    if (document.activeElement !== button && document.activeElement !== document.body) return;
    (fallback && usable(fallback) ? fallback : list.querySelector(".event-toggle"))?.focus();
  }

  /** The page read backward from `from` (null: the newest); `target` is highlighted and open.
   * `push`: a new history entry (a page the user turned to), so that Back returns here. */
  async function page(from, { target = null, focus = false, push = false } = {}) {
    if (from !== null && from >= state.head) from = null;
    const read = ++reads;
    state.from = from;
    arrived = from === null ? [] : null;
    fresh = []; // (in the page read now, or not on it)
    // (not once this page is gone: the query would be another page's)
    if (!signal.aborted) setQuery(target !== null ? { at: target } : { from }, null, { push });
    fill(status, loading());
    try {
      const result =
        state.head === 0 && from === null
          ? { head: 0, events: [] }
          : await api(`${base}/events`, {
              query: { direction: "backward", limit: PAGE, from: from ?? undefined },
              signal,
              exact: true,
            });
      if (read !== reads) return false; // another page was asked for meanwhile: it is shown
      const late = (arrived || []).filter((event) => event.position > (result.events[0]?.position ?? 0));
      arrived = null;
      result.events.unshift(...late.reverse());
      state.head = Math.max(state.head, result.head);
      onHead(state.head);
      fill(status);
      if (from === null) {
        state.pending = 0;
        banner.hidden = true;
      }
      fill(
        list,
        result.events.map((event) => eventItem(event, { expanded: event.position === target })),
      );
      state.newest = result.events.length ? result.events[0].position : 0;
      state.oldest = result.events.length ? result.events[result.events.length - 1].position : 0;
      if (!result.events.length)
        fill(
          status,
          emptyState(
            "No events yet",
            h("p", {}, "Append one with the form on this page, or through the API."),
          ),
        );
      updatePager();
      if (target !== null) {
        const row = list.querySelector(`[data-position="${target}"]`);
        // A page of big events can end before the target: then the page ending at it.
        if (!row && target < state.head && from !== target) return page(target, { target, focus });
        row?.classList.add("target");
        row?.setAttribute("aria-current", "true");
        if (focus) row?.querySelector(".event-toggle").focus({ preventScroll: true });
        row?.scrollIntoView({ block: "center" });
      }
      return true;
    } catch (error) {
      if (read !== reads) return false;
      arrived = null;
      if (error.name !== "AbortError") fill(status, errorBox(error, "Could not read the events"));
      return false;
    }
  }

  function received(event) {
    if (event.position <= state.head) return; // already read with a page
    state.head = Math.max(state.head, event.position);
    onEvent(event);
    if (arrived !== null) arrived.push(event); // the newest page is being read: on top of it
    else if (state.from === null) fresh.push(event);
    else state.pending += 1;
    drawLive();
  }

  // Once a frame, however many events came: a burst of thousands drew (and dropped) a row each.
  const drawLive = perFrame(() => {
    if (fresh.length) {
      if (state.newest === 0) fill(status);
      const newest = fresh.slice(-MAX_ROWS).reverse();
      list.prepend(...newest.map((event) => eventItem(event, { fresh: true })));
      state.newest = newest[0].position;
      fresh = [];
      while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
      state.oldest = Number(list.lastElementChild.dataset.position);
    }
    if (state.pending && state.from !== null) {
      fill(
        banner,
        h(
          "button",
          { type: "button", class: "btn btn-small", onclick: (event) => turn(null, event.currentTarget) },
          `${fmtNumber(state.pending)} new · show newest`,
        ),
      );
      banner.hidden = false;
    }
    updatePager();
  });

  // The tail's own state, and whether the server answers the header's reads: a server that
  // hangs (stopped, swamped) keeps the tail's connection open, so "● live" said nothing then.
  let tailState = "closed";
  let serverAnswers = true;
  function drawLiveState() {
    const shown = tailState === "open" && !serverAnswers ? "silent" : tailState;
    liveState.textContent = {
      open: "● live",
      silent: "connected, but the server does not answer…",
      connecting: "connecting…",
      reconnecting: "reconnecting…",
      paused: "paused while the tab is hidden",
      closed: "",
    }[shown];
    liveState.classList.toggle("live-on", shown === "open");
  }
  const stopWatch = onConnection((server) => {
    serverAnswers = server !== "reconnecting";
    drawLiveState();
  });
  signal.addEventListener("abort", stopWatch);

  function setLive(on) {
    state.liveStop?.();
    state.liveStop = null;
    tailState = "closed";
    drawLiveState();
    if (!on) return;
    state.liveStop = live(`${base}/live`, {
      query: { from: state.head + 1 },
      signal,
      onMessage: ({ data }) => received(parseJson(data)),
      onState: (s) => {
        tailState = s;
        drawLiveState();
      },
      onError: (error) => fill(status, errorBox(error, "Live tail")),
    });
  }

  liveToggle.addEventListener("change", () => {
    if (!liveToggle.checked) setLive(false);
    else if (state.from === null)
      page(null).then(() => setLive(true)); // catch up, then tail
    else setLive(true);
  });
  /** The page a query says (?at=, ?from=, or the newest). */
  function show(query) {
    const at = positionIn(query?.get("at"));
    return at ? goTo(at) : page(positionIn(query?.get("from")));
  }
  // Back and Forward between the pages turned to; the focus, left on a pager button that
  // disabled itself (or lost with it), goes to the first event, as after a turn.
  onQueryChange(
    (turnedTo) =>
      show(turnedTo).then(() => {
        const active = document.activeElement;
        const stranded = element.contains(active) && active.matches("button") && !usable(active);
        if (active === document.body || stranded)
          list.querySelector(".event-toggle")?.focus({ preventScroll: true });
      }),
    signal,
  );
  show(query).then(() => setLive(liveToggle.checked));
  return element;
}
