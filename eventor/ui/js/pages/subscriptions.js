// The subscriptions: status, progress (a lag bar), last delivery and last error; filtered
// by status (or having parked events) or name, refreshed as deliveries happen.

import { api } from "../api.js";
import { fill, fmtNumber, h, pageTitle, refill, streamHref, timeAgo } from "../dom.js";
import { setQuery } from "../router.js";
import { onStats } from "../stats.js";
import { emptyState, errorBox, lagBar, loading, statusBadge, subscriptionLink, takeDeleted } from "../ui.js";

const FILTERS = ["all", "active", "retrying", "paused", "parked"];
/** Rows drawn until asked for all: thousands took seconds to draw, and again at each refresh. */
const ROWS = 200;

/** Whether `s` passes the status filter: "parked" is any status with parked events. */
function passes(s, filter) {
  if (filter === "parked") return s.parked > 0;
  return filter === "all" || s.status === filter;
}

/** The last error; for a subscription paused without one (by hand), why it is paused. */
function errorText(s) {
  if (s.last_error) return s.last_error;
  return s.status === "paused" && s.paused_reason ? `paused: ${s.paused_reason}` : "";
}

export default function subscriptions(main, { query, signal }) {
  const state = {
    status: FILTERS.includes(query.get("status")) ? query.get("status") : "all",
    text: query.get("q") || "",
    list: null,
    all: false, // every row drawn, past ROWS
  };
  const body = h("div", { id: "subscriptions-list" }, loading());
  const search = h("input", {
    class: "input",
    type: "search",
    id: "subscription-filter",
    placeholder: "Filter by name or stream…",
    value: state.text,
    autocomplete: "off",
  });
  const filterButtons = FILTERS.map((status) =>
    h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        "aria-pressed": String(status === state.status),
        dataset: { filter: status },
      },
      status[0].toUpperCase() + status.slice(1),
    ),
  );
  const counts = h("p", { class: "page-sub" });
  const deleted = takeDeleted();

  fill(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, pageTitle("Subscriptions"), counts),
      h("a", { class: "btn btn-primary", href: "/dashboard/new-subscription" }, "New subscription"),
    ),
    deleted === null
      ? null
      : h(
          "div",
          { class: "alert alert-ok section-gap", role: "status", id: "deleted-notice" },
          `Deleted “${deleted}”.`,
        ),
    h(
      "div",
      { class: "toolbar section-gap", role: "group", "aria-label": "Filters" },
      h("div", { class: "actions", role: "group", "aria-label": "Status" }, filterButtons),
      h(
        "div",
        { class: "search" },
        h("label", { class: "visually-hidden", for: "subscription-filter" }, "Filter subscriptions"),
        search,
      ),
    ),
    h("section", { class: "card section-gap", "aria-label": "Subscriptions" }, body),
  );

  function render() {
    const list = state.list;
    if (!list) return;
    const text = state.text.toLowerCase();
    const shown = list.filter(
      (s) =>
        passes(s, state.status) &&
        (!text || s.name.toLowerCase().includes(text) || s.stream.toLowerCase().includes(text)),
    );
    const by = (status) => list.filter((s) => s.status === status).length;
    const parked = list.filter((s) => s.parked > 0).length;
    counts.textContent = `${fmtNumber(list.length)} in all: ${fmtNumber(by("active"))} active, ${fmtNumber(by("retrying"))} retrying, ${fmtNumber(by("paused"))} paused${parked ? `; ${fmtNumber(parked)} with parked events` : ""}`;
    if (!list.length) {
      fill(
        body,
        emptyState(
          "No subscriptions yet",
          h(
            "p",
            {},
            "A subscription pushes a stream's events to a webhook, in order. ",
            h("a", { href: "/dashboard/new-subscription" }, "Create one"),
            ".",
          ),
        ),
      );
      return;
    }
    if (!shown.length) {
      fill(body, emptyState("Nothing matches the filter"));
      return;
    }
    const rows = state.all ? shown : shown.slice(0, ROWS);
    const more =
      rows.length < shown.length
        ? h(
            "div",
            { class: "card-body hint", id: "subscriptions-more" },
            `The first ${fmtNumber(rows.length)} of ${fmtNumber(shown.length)} (a filter narrows them). `,
            h(
              "button",
              {
                type: "button",
                class: "btn btn-small",
                onclick: () => {
                  state.all = true;
                  render();
                },
              },
              `Show all ${fmtNumber(shown.length)}`,
            ),
          )
        : null;
    // Drawn anew at each refresh: the focus kept on the row it was in (Tab goes on from there).
    refill(
      body,
      h(
        "table",
        { class: "table stackable" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Name", "Status", "Progress", "Last delivery", "Last error"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          rows.map((s) =>
            h(
              "tr",
              { dataset: { subscription: s.name, key: s.name } },
              h(
                "td",
                { class: "wide" },
                subscriptionLink(s.name, { class: "cell-name" }),
                h("div", { class: "hint" }, "stream ", h("a", { href: streamHref(s.stream) }, s.stream)),
              ),
              h(
                "td",
                {},
                statusBadge(s.status),
                s.parked
                  ? [" ", h("span", { class: "badge tone-warn plain" }, `${fmtNumber(s.parked)} parked`)]
                  : null,
              ),
              h("td", { class: "wide" }, lagBar(s.position, s.head)),
              h("td", { "data-label": "Last delivery" }, timeAgo(s.last_delivered_at)),
              h(
                "td",
                { class: "wide cell-error", title: errorText(s) },
                errorText(s) || h("span", { class: "muted" }, "—"),
              ),
            ),
          ),
        ),
      ),
      more,
    );
  }

  let fetching = false;
  async function load() {
    if (fetching) return;
    fetching = true;
    try {
      const { subscriptions } = await api("/v1/subscriptions", { signal, exact: "position" });
      state.list = subscriptions.sort((a, b) => a.name.localeCompare(b.name));
      render();
    } catch (error) {
      if (error.name !== "AbortError")
        fill(body, h("div", { class: "card-body" }, errorBox(error, "Could not load the subscriptions")));
    } finally {
      fetching = false;
    }
  }

  for (const button of filterButtons) {
    button.addEventListener("click", () => {
      state.status = button.dataset.filter;
      for (const b of filterButtons) b.setAttribute("aria-pressed", String(b === button));
      setQuery({ status: state.status === "all" ? "" : state.status, q: state.text });
      render();
    });
  }
  search.addEventListener("input", () => {
    state.text = search.value.trim();
    setQuery({ status: state.status === "all" ? "" : state.status, q: state.text });
    render();
  });

  let seen = "";
  const stop = onStats((stats) => {
    const s = stats.latest;
    const key = JSON.stringify([s.counters, s.subscriptions, s.streams.events]);
    if (key !== seen) {
      seen = key;
      load();
    }
  });
  signal.addEventListener("abort", stop);
  load();
}
