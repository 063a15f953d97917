// One stream: its events (newest first, paged, live), the payload shapes per event type,
// its subscriptions, and a form to append a test event.

import { api } from "../api.js";
import { appendForm } from "../append-form.js";
import {
  STREAM_NAME,
  fill,
  fmtBytes,
  fmtNumber,
  h,
  pageTitle,
  perFrame,
  refill,
  seg,
  throttle,
  timeAgo,
} from "../dom.js";
import { eventList } from "../event-list.js";
import { eventData } from "../event-view.js";
import { JsonNumber, formatJson, parseJson } from "../json.js";
import { retryWhenOnline } from "../router.js";
import { onStats } from "../stats.js";
import {
  card,
  copyButton,
  emptyState,
  errorBox,
  jsonView,
  lagBar,
  loading,
  showAll,
  statusBadge,
  subscriptionLink,
  TYPES_SHOWN,
} from "../ui.js";

/** While events arrive, the size on disk and the subscriptions' lags are read again at most
 * this often (ms), not at each event; and so are the lags as the server's counters move. */
const REFRESH_EVERY = 3000;
/** Keys of a payload shape drawn as chips before "+N more": 20,000 keys made a card 41,000 px
 * tall. */
const KEYS_SHOWN = 50;

async function load(name, signal) {
  // Listing by prefix says whether the stream exists without a 404 for a new one.
  const { streams } = await api("/v1/streams", { query: { prefix: name, limit: 1 }, signal });
  if (!streams.length || streams[0].name !== name) return null;
  return api(`/v1/streams/${seg(name)}`, { signal });
}

/** The data of a variant that is not JSON, from the v1 API: /introspect gives its body as
 * text, which bytes that are not UTF-8 do not survive. */
function binaryExample(stream, position, signal) {
  const slot = h("div", {}, loading());
  api(`/v1/streams/${seg(stream)}/events`, { query: { from: position, limit: 1 }, signal, exact: true })
    .then(({ events }) =>
      fill(slot, events.length ? eventData(events[0]) : h("p", { class: "hint" }, "The example is gone.")),
    )
    .catch((error) => error.name !== "AbortError" && fill(slot, errorBox(error, "Could not load the example")));
  return slot;
}

function shapeName(isJson, parsed, isNumber) {
  if (!isJson) return "not JSON";
  if (isNumber) return "number";
  if (parsed === null) return "null"; // typeof says "object"
  return Array.isArray(parsed) ? "array" : typeof parsed;
}

/** The shapes, as cards: the first TYPES_SHOWN unless `all` (`onAll` is told when the reader
 * asks for the rest). /introspect gives up to 100 examples per type: a stream with 1,500 types
 * drew tens of thousands of cards at once, and the tab froze. */
function shapesView(introspection, signal, all, onAll) {
  const stream = introspection.name;
  const shapes = Object.entries(introspection.event_variants || {}).flatMap(([type, variants]) =>
    variants.map((variant) => [type, variant]),
  );
  if (!shapes.length)
    return emptyState("No payload shapes yet", h("p", {}, "They appear with the first events."));
  const drawn = all ? shapes.length : Math.min(shapes.length, TYPES_SHOWN);
  const cards = shapes.slice(0, drawn).map(([type, variant]) => shapeCard(stream, type, variant, signal));
  if (drawn === shapes.length) return cards;
  const more = showAll(
    drawn,
    shapes.length,
    () => {
      onAll();
      const rest = shapes.slice(drawn).map(([type, variant]) => shapeCard(stream, type, variant, signal));
      more.replaceWith(...rest);
      rest[0].tabIndex = -1; // the keyboard goes on from the first one drawn
      rest[0].focus();
    },
    "shapes-more",
  );
  return [...cards, more];
}

/** A shape's top-level keys as chips: the first KEYS_SHOWN, the rest on request. */
function keyChips(keys) {
  const chip = (key) => h("span", { class: "chip mono" }, key);
  if (!keys.length) return h("span", { class: "chips" }, h("span", { class: "chip" }, "{ }"));
  const chips = h("span", { class: "chips" }, keys.slice(0, KEYS_SHOWN).map(chip));
  const rest = keys.length - KEYS_SHOWN;
  if (rest > 0) {
    const more = h(
      "button",
      { type: "button", class: "chip chip-button", "aria-label": `Show ${fmtNumber(rest)} more keys` },
      `+${fmtNumber(rest)} more`,
    );
    more.addEventListener("click", () => {
      const drawn = keys.slice(KEYS_SHOWN).map(chip);
      more.replaceWith(...drawn);
      drawn[0].tabIndex = -1; // the keyboard goes on from the first one drawn
      drawn[0].focus();
    });
    chips.append(more);
  }
  return chips;
}

function shapeCard(stream, type, variant, signal) {
  let parsed;
  // /introspect gives the body as text: bytes that are not UTF-8 came back as U+FFFD,
  // and such a body may still parse ("\ufffd" is JSON). Those are read from v1.
  let isJson = !variant.body.includes("\ufffd");
  try {
    parsed = parseJson(variant.body);
  } catch {
    isJson = false;
  }
  const isNumber = typeof parsed === "number" || parsed instanceof JsonNumber;
  const keys =
    isJson && parsed && typeof parsed === "object" && !Array.isArray(parsed) && !isNumber
      ? Object.keys(parsed).sort()
      : null;
  return h(
    "div",
    { class: "shape", dataset: { type } },
    h(
      "div",
      { class: "shape-head" },
      h("span", { class: "shape-type" }, type),
      keys ? keyChips(keys) : h("span", { class: "chip" }, shapeName(isJson, parsed, isNumber)),
      h("span", { class: "hint" }, `example: #${variant.position}, `, timeAgo(variant.created)),
    ),
    isJson ? jsonView(formatJson(parsed)) : binaryExample(stream, variant.position, signal),
  );
}

/** The most frequent types first; the first TYPES_SHOWN unless `all` (`onAll` asks for all). */
function typesView(eventTypes, all, onAll) {
  const types = Object.entries(eventTypes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!types.length) return h("p", { class: "card-body hint" }, "None yet.");
  const drawn = all ? types : types.slice(0, TYPES_SHOWN);
  return [
    h(
      "ul",
      { class: "kv-list", id: "event-types" },
      drawn.map(([type, count]) =>
        h(
          "li",
          { dataset: { type } },
          // <bdi>: a right-to-left override in a type must not reorder its line.
          h("span", { class: "grow", title: type }, h("bdi", {}, type)),
          h("strong", { class: "mono" }, fmtNumber(count)),
        ),
      ),
    ),
    drawn.length < types.length ? showAll(drawn.length, types.length, onAll, "event-types-more") : null,
  ];
}

/** The statuses of the subscriptions to `name`, by one filtered read (the whole list of the
 * server was 660 KB for 1,200 subscriptions, read at each refresh). */
async function subscriptionsOf(name, signal) {
  const query = { stream: name };
  return (await api("/v1/subscriptions", { query, signal, exact: "position" })).subscriptions;
}

// The subscriptions to this stream. `known`: the names the stream's
// info gave, shown should their statuses be unreadable (`refreshing`: then the view shown
// stays, and the error is thrown).
async function subscriptionsView(name, { known = [], signal, refreshing = false }) {
  const create = h(
    "a",
    { class: "btn btn-small", href: `/dashboard/new-subscription?stream=${seg(name)}` },
    "New subscription",
  );
  let names = known;
  let byName = new Map();
  let problem = null;
  try {
    const mine = await subscriptionsOf(name, signal);
    byName = new Map(mine.map((s) => [s.name, s]));
    names = mine.map((s) => s.name);
  } catch (error) {
    if (error.name === "AbortError" || refreshing) throw error;
    problem = error;
  }
  if (!names.length && !problem)
    return h(
      "div",
      { class: "card-body" },
      h("p", { class: "hint first" }, "No subscription delivers this stream."),
      create,
    );
  return [
    problem ? h("div", { class: "card-body" }, errorBox(problem, "Could not load the subscriptions")) : null,
    h(
      "ul",
      { class: "kv-list", id: "stream-subscriptions" },
      names.map((sub) => {
        const status = byName.get(sub);
        return h(
          "li",
          { dataset: { subscription: sub, key: sub } },
          subscriptionLink(sub, { class: "grow" }),
          status ? statusBadge(status.status) : null,
          status ? lagBar(status.position, status.head) : null,
        );
      }),
    ),
    h("div", { class: "card-body" }, create),
  ];
}

export default async function stream(main, { params: [name], query, signal, setTitle }) {
  setTitle(name);
  const crumbs = h(
    "nav",
    { class: "crumbs", "aria-label": "Breadcrumb" },
    h("a", { href: "/dashboard/streams" }, "Streams"),
    " / ",
  );
  const head = h(
    "div",
    { class: "page-head" },
    h(
      "div",
      {},
      crumbs,
      h("div", { class: "title-row" }, pageTitle(name), copyButton(name, "Copy stream name")),
    ),
  );
  if (!STREAM_NAME.test(name)) {
    fill(
      main,
      head,
      errorBox(
        new Error("Stream names are 1-200 characters of A-Z a-z 0-9 _ - . : and do not start with . or -."),
        `“${name}” is not a stream name`,
      ),
    );
    return;
  }
  fill(main, head, loading());
  let info;
  try {
    info = await load(name, signal);
  } catch (error) {
    if (error.name !== "AbortError") fill(main, head, errorBox(error, "Could not load the stream"));
    retryWhenOnline(error);
    return;
  }
  // The header and the Event types card show the stream as of position `shown.head`: as read,
  // then one live event at a time. A gap (the tail was off, a page read found a higher head)
  // is closed by reading the stream again.
  let shown = { info, head: info?.head || 0, counts: { ...(info?.event_types || {}) } };
  let wanted = 0;
  let reading = null;
  const meta = h("p", { class: "meta" });
  const metaError = h("div", {});
  const typesBody = h("div", {});
  let allTypes = false; // every event type drawn, past TYPES_SHOWN
  const noEvents = info
    ? null
    : h(
        "div",
        { class: "alert alert-warn", role: "status" },
        "This stream has no events yet. Append the first one to create it.",
      );
  function render() {
    const { info: at, head: position, counts } = shown;
    fill(
      meta,
      h("span", {}, h("strong", { id: "stream-head" }, fmtNumber(position)), position === 1 ? " event" : " events"),
      h(
        "span",
        {},
        h("strong", { id: "stream-types" }, fmtNumber(Object.keys(counts).length)),
        Object.keys(counts).length === 1 ? " type" : " types",
      ),
      at ? h("span", {}, h("strong", {}, fmtBytes(at.size_bytes)), " on disk") : null,
      at ? h("span", {}, "created ", timeAgo(at.created)) : null,
      h("span", {}, "last event ", timeAgo(shown.updated ?? at?.updated)),
    );
    fill(
      typesBody,
      typesView(counts, allTypes, () => {
        allTypes = true;
        render();
      }),
    );
    if (position) noEvents?.remove();
  }
  // A burst of live events draws the header and the Event types card once a frame.
  const draw = perFrame(render);
  let again = false; // asked for while a read was on its way, which may be older than that
  function reread() {
    if (reading) {
      again = true;
      return;
    }
    reading = (async () => {
      try {
        do {
          again = false;
          const target = wanted;
          const fresh = await api(`/v1/streams/${seg(name)}`, { signal });
          if (fresh.head >= shown.head) {
            shown = { info: fresh, head: fresh.head, counts: { ...fresh.event_types } };
          } else {
            // The live tail got ahead of this read: the tail's counts stay, the size and the
            // creation time are taken (a new stream had none: they stayed missing for good), and
            // the stream is read again a while later, for the size at the tail's head.
            shown.info = { ...(shown.info || fresh), size_bytes: fresh.size_bytes };
            headMoved();
          }
          fill(metaError);
          draw();
          // Again for a head heard of while this read was on its way.
          if (shown.head < wanted && wanted !== target) again = true;
        } while (again);
      } catch (error) {
        if (error.name !== "AbortError") fill(metaError, errorBox(error, "Could not read the stream again"));
      } finally {
        reading = null;
      }
    })();
  }
  function catchUp(head) {
    wanted = Math.max(wanted, head);
    if (head > shown.head) {
      reread();
      headMoved();
    }
  }
  // The size on disk and the lags of the stream's subscriptions move with its head: read
  // again a while after it moves (once for all the events of that while).
  let followTimer = null;
  function headMoved() {
    if (followTimer !== null) return;
    followTimer = setTimeout(() => {
      followTimer = null;
      reread();
      refreshSubscriptions();
    }, REFRESH_EVERY);
  }
  // Their lags and statuses also move with deliveries and changes made elsewhere: read again
  // as the server's counters move, at most every REFRESH_EVERY ms (not at each second).
  const refreshSubscriptions = throttle(() => {
    subscriptionsView(name, { signal, refreshing: true })
      .then((view) => refill(subscriptions, view)) // the focus kept on its row
      .catch(() => {}); // kept as shown: the header says when the server cannot be reached
  }, REFRESH_EVERY);
  signal.addEventListener("abort", () => {
    clearTimeout(followTimer);
    refreshSubscriptions.cancel();
  });
  render();
  head.firstChild.append(meta, metaError);

  const events = eventList(name, {
    head: info?.head || 0,
    query,
    signal,
    onEvent(event) {
      if (event.position !== shown.head + 1) {
        catchUp(event.position);
        return;
      }
      shown.counts[event.type] = (shown.counts[event.type] || 0) + 1;
      shown.head = event.position;
      shown.updated = event.created;
      draw();
      if (!shown.info) reread(); // the stream's first event: its size and creation time
      headMoved();
    },
    onHead: catchUp,
  });
  const shapesBody = h("div", { id: "shapes-body" });
  const shapes = h(
    "div",
    { id: "shapes", hidden: true },
    h(
      "div",
      { class: "card-body toolbar" },
      h("span", { class: "hint" }, "One example per event type and shape, read when this tab opens."),
      h(
        "button",
        { type: "button", class: "btn btn-small", id: "shapes-refresh", onclick: loadShapes },
        "Refresh",
      ),
    ),
    shapesBody,
  );
  const panels = {
    events: h("div", { id: "panel-events", role: "tabpanel", "aria-labelledby": "tab-events" }, events),
    shapes,
  };
  shapes.setAttribute("role", "tabpanel");
  shapes.setAttribute("aria-labelledby", "tab-shapes");
  let shapesRead = 0; // only the latest read is shown
  let allShapes = false; // every shape drawn, past TYPES_SHOWN (kept on Refresh)
  const drawShapes = (introspection) =>
    shapesView(introspection, signal, allShapes, () => {
      allShapes = true;
    });

  // Read again at each look: new types and shapes come with new events.
  function loadShapes() {
    const id = ++shapesRead;
    if (!shapesBody.hasChildNodes()) fill(shapesBody, loading());
    api(`/introspect/${seg(name)}`, { signal })
      .then((introspection) => id === shapesRead && fill(shapesBody, drawShapes(introspection)))
      .catch(
        (error) =>
          error.name !== "AbortError" &&
          id === shapesRead &&
          fill(shapesBody, h("div", { class: "card-body" }, errorBox(error, "Could not load the shapes"))),
      );
  }

  const tabs = ["events", "shapes"].map((key) =>
    h(
      "button",
      {
        type: "button",
        class: "tab",
        role: "tab",
        id: `tab-${key}`,
        "aria-controls": panels[key].id,
        "aria-selected": String(key === "events"),
        tabindex: key === "events" ? "0" : "-1",
      },
      key === "events" ? "Events" : "Payload shapes",
    ),
  );
  function select(key) {
    for (const tab of tabs) {
      const on = tab.id === `tab-${key}`;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    for (const [k, panel] of Object.entries(panels)) panel.hidden = k !== key;
    if (key === "shapes") loadShapes();
  }
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(index ? "shapes" : "events"));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
      const other = tabs[1 - index];
      other.focus();
      select(other.id.slice(4));
    });
  });

  const subscriptions = h("div", {}, loading());
  fill(
    main,
    head,
    noEvents,
    h(
      "div",
      { class: "grid-2" },
      h(
        "section",
        { class: "card", "aria-label": "Events" },
        h("div", { class: "tabs", role: "tablist" }, tabs),
        panels.events,
        shapes,
      ),
      h(
        "div",
        { class: "stack" },
        card(
          "Append an event",
          { id: "append" },
          appendForm(name, { types: Object.keys(shown.counts), signal }),
        ),
        card("Event types", { flush: true, id: "types" }, typesBody),
        card("Subscriptions", { flush: true, id: "subscriptions" }, subscriptions),
      ),
    ),
  );
  subscriptionsView(name, { known: info?.subscriptions, signal })
    .then((view) => fill(subscriptions, view))
    .catch((error) => error.name !== "AbortError" && fill(subscriptions, errorBox(error)));
  // Their statuses and lags move with deliveries and with changes made elsewhere.
  let seen = null;
  const stopStats = onStats((stats) => {
    const s = stats.latest;
    const key = JSON.stringify([s.subscriptions, s.counters.delivered_events, s.counters.subscription_changes]);
    const first = seen === null;
    if (key === seen) return;
    seen = key;
    if (!first) refreshSubscriptions(); // (the first: just loaded)
  });
  signal.addEventListener("abort", stopStats);
}
