// The overview: how much there is, how fast it flows, and which subscriptions need a look.

import { api } from "../api.js";
import { rateChart } from "../chart.js";
import { fill, fmtNumber, h, pageTitle, refill } from "../dom.js";
import { onStats } from "../stats.js";
import {
  attentionOrder,
  attentionRank,
  attentionReason,
  badge,
  card,
  errorBox,
  lagBar,
  loading,
  statusBadge,
  subscriptionLink,
} from "../ui.js";

const LAG_WINDOW = 10; // samples of each subscription's lag kept to tell a growing lag
/** Rows of "Needs attention" drawn: 1,200 paused subscriptions were 1,200 rows drawn every
 * second. The rest are counted, with links to the subscriptions list filtered to them. */
const ATTENTION_ROWS = 20;
/** The subscriptions list's filter for each rank of attentionRank (a growing lag has none). */
const RANK_FILTER = [
  ["retrying", "retrying", "?status=retrying"],
  ["paused", "paused", "?status=paused"],
  ["parked", "with parked events", "?status=parked"],
  ["growing", "with a growing lag", ""],
];

function statCard(label, id) {
  const value = h("div", { class: "stat-value", id, "aria-live": "off" }, "—");
  const note = h("div", { class: "stat-note" });
  return {
    element: h("div", { class: "card stat" }, h("div", { class: "stat-label" }, label), value, note),
    value,
    note,
  };
}

export default function overview(main, { signal }) {
  const streams = statCard("Streams", "stat-streams");
  const events = statCard("Events", "stat-events");
  const subscriptions = statCard("Subscriptions", "stat-subscriptions");
  const parked = statCard("Parked events", "stat-parked");
  const chart = rateChart([
    { key: "appends", label: "Appends", tone: "appends" },
    { key: "deliveries", label: "Deliveries", tone: "deliveries" },
  ]);
  const attention = h("div", { id: "attention" }, loading());
  const title = h("span", {}, "Throughput, last 5 minutes");
  const windows = [
    [60, "1 min"],
    [300, "5 min"],
  ].map(([slots, label]) =>
    h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        "aria-pressed": String(slots === 300),
        dataset: { slots: String(slots) },
      },
      label,
    ),
  );
  for (const button of windows) {
    button.addEventListener("click", () => {
      for (const b of windows) b.setAttribute("aria-pressed", String(b === button));
      const slots = Number(button.dataset.slots);
      title.textContent = `Throughput, last ${slots === 60 ? "minute" : "5 minutes"}`;
      chart.setSlots(slots);
    });
  }
  const version = h("span");
  // Made once: a link redrawn with every second's numbers would lose the keyboard's focus.
  const browseStreams = h("a", { href: "/dashboard/streams" }, "Browse streams →");
  const replayParked = h(
    "a",
    { href: "/dashboard/subscriptions?status=parked", id: "parked-link" },
    "Review and replay them →",
  );

  fill(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, pageTitle("Overview"), h("p", { class: "page-sub" }, version)),
    ),
    h("div", { class: "stat-grid" }, streams.element, events.element, subscriptions.element, parked.element),
    h(
      "div",
      { class: "stack" },
      card(
        title,
        {
          id: "throughput",
          actions: h("div", { class: "actions", role: "group", "aria-label": "Time window" }, windows),
        },
        chart.element,
      ),
      card(
        "Needs attention",
        {
          flush: true,
          id: "needs-attention",
          actions: h("a", { href: "/dashboard/subscriptions" }, "All subscriptions →"),
        },
        attention,
      ),
    ),
  );

  const lags = new Map(); // name → recent lags, oldest first
  let attentionDrawn = null; // what "Needs attention" shows, to draw it again only on a change
  let lastCounters = "";
  let fetching = false;
  let subscriptionError = null;

  async function refreshSubscriptions() {
    if (fetching) return;
    fetching = true;
    try {
      const { subscriptions } = await api("/v1/subscriptions", { signal, exact: "position" });
      const list = subscriptions;
      subscriptionError = null;
      for (const sub of list) {
        const seen = (lags.get(sub.name) || []).concat(sub.lag).slice(-LAG_WINDOW);
        lags.set(sub.name, seen);
      }
      renderAttention(list);
    } catch (error) {
      if (error.name === "AbortError") return;
      subscriptionError = error;
      attentionDrawn = null;
      fill(attention, h("div", { class: "card-body" }, errorBox(error, "Could not load the subscriptions")));
    } finally {
      fetching = false;
    }
  }

  const growing = (name) => {
    const seen = lags.get(name) || [];
    if (seen.length < 3) return false;
    const last = seen[seen.length - 1];
    return last > 0 && last > seen[0] && seen.slice(-3).every((v, i, a) => i === 0 || v >= a[i - 1]);
  };

  function renderAttention(list) {
    const needy = list
      .map((sub) => ({ sub, grow: growing(sub.name) }))
      .filter(({ sub, grow }) => attentionReason(sub, grow) !== null)
      .sort((a, b) => attentionOrder(a.sub, a.grow) - attentionOrder(b.sub, b.grow) || b.sub.lag - a.sub.lag);
    if (list.length === 0) {
      attentionDrawn = null;
      fill(
        attention,
        h(
          "div",
          { class: "empty" },
          h("p", { class: "empty-title" }, "No subscriptions yet"),
          h(
            "p",
            {},
            "Push a stream's events to a webhook: ",
            h("a", { href: "/dashboard/new-subscription" }, "create a subscription"),
            ".",
          ),
        ),
      );
      return;
    }
    if (needy.length === 0) {
      attentionDrawn = null;
      fill(
        attention,
        h(
          "div",
          { class: "empty" },
          h("p", { class: "empty-title" }, "All good"),
          h("p", {}, `All ${fmtNumber(list.length)} subscriptions are delivering.`),
        ),
      );
      return;
    }
    const shown = needy.slice(0, ATTENTION_ROWS);
    const rest = [0, 0, 0, 0];
    for (const { sub, grow } of needy.slice(ATTENTION_ROWS)) rest[attentionRank(sub, grow)] += 1;
    // Drawn again only when something on it changed (the focus kept on its row when it is).
    const drawn = JSON.stringify([
      shown.map(({ sub, grow }) => [
        sub.name,
        sub.status,
        String(sub.position),
        sub.head,
        attentionReason(sub, grow),
      ]),
      rest,
    ]);
    if (drawn === attentionDrawn) return;
    attentionDrawn = drawn;
    refill(
      attention,
      shown.map(({ sub, grow }) =>
        h(
          "div",
          { class: "attention", dataset: { subscription: sub.name, key: sub.name } },
          subscriptionLink(sub.name, { class: "attention-name" }),
          statusBadge(sub.status),
          lagBar(sub.position, sub.head),
          h("div", { class: "attention-why" }, attentionReason(sub, grow)),
        ),
      ),
      shown.length < needy.length ? moreNote(shown.length, needy.length, rest) : null,
    );
  }

  /** "The first 20 of 1,211; the rest: 1,180 paused · 11 with parked events", each a link to
   * the subscriptions list filtered to them. */
  function moreNote(drawn, total, rest) {
    const links = RANK_FILTER.flatMap(([key, label, query], rank) =>
      rest[rank]
        ? [
            " · ",
            h(
              "a",
              { href: `/dashboard/subscriptions${query}`, dataset: { rest: key } },
              `${fmtNumber(rest[rank])} ${label}`,
            ),
          ]
        : [],
    ).slice(1);
    return h(
      "div",
      { class: "card-body hint", id: "attention-more", dataset: { key: "more" } },
      `The first ${fmtNumber(drawn)} of ${fmtNumber(total)}; the rest: `,
      links,
    );
  }

  const stop = onStats((stats) => {
    const s = stats.latest;
    version.textContent = `Eventor ${s.version}, up since ${new Date(s.started).toLocaleString()}`;
    streams.value.textContent = fmtNumber(s.streams.total);
    fill(streams.note, browseStreams);
    events.value.textContent = fmtNumber(s.streams.events);
    fill(events.note, `${fmtNumber(s.counters.appended_events)} appended since start`);
    chart.update({ appends: stats.appends, deliveries: stats.deliveries });
    if (!s.subscriptions) {
      subscriptions.value.textContent = "—";
      fill(subscriptions.note, "not enabled on this server");
      parked.value.textContent = "—";
      attentionDrawn = null;
      fill(attention, h("div", { class: "empty" }, h("p", {}, "This server runs no subscriptions.")));
      return;
    }
    const subs = s.subscriptions;
    subscriptions.value.textContent = fmtNumber(subs.total);
    fill(
      subscriptions.note,
      badge(`${fmtNumber(subs.active)} active`, "ok"),
      subs.retrying ? badge(`${fmtNumber(subs.retrying)} retrying`, "warn") : null,
      subs.paused ? badge(`${fmtNumber(subs.paused)} paused`, "bad") : null,
    );
    parked.value.textContent = fmtNumber(subs.parked_events);
    fill(parked.note, subs.parked_events ? replayParked : "none");
    // Re-read the subscriptions when something moved, and every few seconds to watch lags.
    const counters = JSON.stringify([s.counters, subs, s.streams.events]);
    if (counters !== lastCounters || subscriptionError || (Date.parse(s.time) / 1000) % 5 < 1) {
      lastCounters = counters;
      refreshSubscriptions();
    }
  });
  signal.addEventListener("abort", stop);
}
