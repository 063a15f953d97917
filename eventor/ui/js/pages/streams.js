// The streams: a searchable (by prefix), paginated list. The API pages by name (`after`);
// the pages seen so far are kept so "Previous" needs no request back.

import { api } from "../api.js";
import { STREAM_NAME, debounce, fill, fmtNumber, h, pageTitle, refill, streamHref, timeAgo } from "../dom.js";
import { retryWhenOnline, setQuery } from "../router.js";
import { onStats } from "../stats.js";
import { emptyState, errorBox, loading } from "../ui.js";

const PAGE = 50;
const TYPE_CHIPS = 3;
/** While events are appended, the page shown is read again at most this often (ms). */
const REFRESH_EVERY = 3000;

function typeCell(info) {
  if (!info) return h("span", { class: "muted" }, "…");
  const types = Object.entries(info.event_types).sort((a, b) => b[1] - a[1]);
  if (types.length === 0) return h("span", { class: "muted" }, "—");
  return h(
    "div",
    { class: "chips", title: types.map(([t, n]) => `${t}: ${n}`).join("\n") },
    types.slice(0, TYPE_CHIPS).map(([type]) => h("span", { class: "chip" }, h("bdi", {}, type))),
    types.length > TYPE_CHIPS ? h("span", { class: "chip muted" }, `+${types.length - TYPE_CHIPS}`) : null,
  );
}

export default function streams(main, { query, signal }) {
  // Opened at a later page from a shared link: "Previous" leads back to the first page, and
  // until it is reached the page's place in the list is not known, only where it starts. A
  // reload (or a return to this entry) finds the pages seen before kept with the entry.
  const startAfter = query.get("after") || "";
  const prefix = query.get("prefix") || "";
  const kept = history.state?.streamCursors;
  const resumed =
    Array.isArray(kept) && kept.at(-1) === startAfter && history.state.prefix === prefix ? kept : null;
  const state = {
    prefix,
    cursors: resumed || (startAfter ? ["", startAfter] : [""]),
    counted: resumed !== null || !startAfter,
    page: null,
  };
  const search = h("input", {
    class: "input",
    type: "search",
    id: "stream-search",
    placeholder: "Search by name prefix…",
    value: state.prefix,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "stream-search-hint",
  });
  const body = h("div", { id: "streams-list" }, loading());
  const count = h("span", { class: "muted" });
  const total = h("span", { id: "streams-total" }, "All");
  // The rows follow appends made elsewhere: when the server's count of appended events moves,
  // the page shown is read again (at most every REFRESH_EVERY ms).
  let seenAppended = null;
  let refreshTimer = null;
  const stopStats = onStats((stats) => {
    total.textContent = fmtNumber(stats.latest.streams.total);
    const appended = stats.latest.counters.appended_events;
    if (seenAppended !== null && appended !== seenAppended && refreshTimer === null && state.page) {
      refreshTimer = setTimeout(() => {
        refreshTimer = null;
        refresh();
      }, REFRESH_EVERY);
    }
    seenAppended = appended;
  });
  signal.addEventListener("abort", () => {
    stopStats();
    clearTimeout(refreshTimer);
  });

  fill(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, pageTitle("Streams"), h("p", { class: "page-sub" }, count)),
      h(
        "div",
        { class: "search" },
        h("label", { class: "visually-hidden", for: "stream-search" }, "Search streams"),
        search,
        h(
          "span",
          { id: "stream-search-hint", class: "visually-hidden" },
          "Shows the streams whose names start with this text",
        ),
      ),
    ),
    h("section", { class: "card", "aria-label": "Streams" }, body),
  );

  let loadId = 0;
  async function load() {
    const id = ++loadId;
    const after = state.cursors[state.cursors.length - 1];
    setQuery({ prefix: state.prefix, after }, { streamCursors: state.cursors, prefix: state.prefix });
    try {
      const page = await api("/v1/streams", { query: { prefix: state.prefix, after, limit: PAGE }, signal });
      if (id !== loadId) return;
      state.page = page;
      render(page);
      details(page.streams, id);
    } catch (error) {
      if (error.name !== "AbortError")
        fill(body, h("div", { class: "card-body" }, errorBox(error, "Could not list the streams")));
      if (!state.page) retryWhenOnline(error); // shown before, the list is read again as it is
    }
  }

  const rows = new Map(); // name → the row's cells: { head, types, updated }

  // The page shown, read again: rows updated in place (the keyboard stays where it is), or
  // drawn anew when other streams now belong on it (a new one, say).
  async function refresh() {
    const id = loadId;
    const after = state.cursors[state.cursors.length - 1];
    try {
      const page = await api("/v1/streams", { query: { prefix: state.prefix, after, limit: PAGE }, signal });
      if (id !== loadId) return; // a newer load took over meanwhile
      const before = state.page.streams;
      state.page = page;
      const same =
        before.length === page.streams.length && before.every((s, i) => s.name === page.streams[i].name);
      if (!same) {
        render(page);
        details(page.streams, id);
        return;
      }
      const moved = page.streams.filter((stream, i) => stream.head !== before[i].head);
      for (const stream of moved) {
        const cells = rows.get(stream.name);
        fill(cells.head, fmtNumber(stream.head));
        fill(cells.updated, timeAgo(stream.updated));
      }
      details(moved, id);
    } catch (error) {
      if (error.name !== "AbortError") console.warn("could not refresh the streams list", error);
    }
  }

  function render(page) {
    // Drawn anew (other streams belong on the page): the focus kept on its row, or, its stream
    // pushed off the page, on the row now in its place; not lost to the page.
    const focusedRow = [...body.querySelectorAll("tbody tr")].findIndex((row) =>
      row.contains(document.activeElement),
    );
    draw(page);
    if (focusedRow >= 0 && document.activeElement === document.body) {
      const links = body.querySelectorAll("tbody tr a");
      links[Math.min(focusedRow, links.length - 1)]?.focus();
    }
  }

  function draw(page) {
    rows.clear();
    const first = state.cursors.length === 1;
    fill(
      count,
      state.prefix ? `Names starting with “${state.prefix}”` : total,
      state.prefix ? "" : " streams, by name",
    );
    if (page.streams.length === 0 && !first) {
      // A cursor at or past the last stream (a link kept from earlier): nothing here, a way back.
      const back = h(
        "button",
        { type: "button", class: "btn btn-small", onclick: () => restart() },
        "First page",
      );
      fill(body, emptyState(`No streams after “${state.cursors[state.cursors.length - 1]}”`, back));
      return;
    }
    if (page.streams.length === 0) {
      const valid = STREAM_NAME.test(state.prefix);
      fill(
        body,
        state.prefix
          ? emptyState(
              `No stream starts with “${state.prefix}”`,
              valid
                ? h(
                    "p",
                    {},
                    h("a", { href: streamHref(state.prefix) }, `Open “${state.prefix}”`),
                    " to append its first event.",
                  )
                : null,
            )
          : emptyState(
              "No streams yet",
              h("p", {}, "A stream is created by its first event. From a shell:"),
              h(
                "pre",
                {},
                `curl -X POST ${location.origin}/v1/streams/orders/events \\\n  -H 'Content-Type: application/json' \\\n  -d '{"type": "OrderPlaced", "data": {"id": 1}}'`,
              ),
            ),
      );
      return;
    }
    const table = h(
      "table",
      { class: "table stackable" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Name"),
          h("th", { scope: "col", class: "num" }, "Events"),
          h("th", { scope: "col" }, "Types"),
          h("th", { scope: "col" }, "Last event"),
        ),
      ),
      h(
        "tbody",
        {},
        page.streams.map((stream) => {
          const cells = {
            head: h("td", { class: "num", "data-label": "Events" }, fmtNumber(stream.head)),
            types: h("td", { class: "wide", "data-label": "Types" }, typeCell(null)),
            updated: h("td", { "data-label": "Last event" }, timeAgo(stream.updated)),
          };
          rows.set(stream.name, cells);
          return h(
            "tr",
            { dataset: { stream: stream.name, key: stream.name } },
            h("td", { class: "cell-name wide" }, h("a", { href: streamHref(stream.name) }, stream.name)),
            cells.head,
            cells.types,
            cells.updated,
          );
        }),
      ),
    );
    const previous = h(
      "button",
      { type: "button", class: "btn btn-small", disabled: first, onclick: () => go(-1) },
      "← Previous",
    );
    const next = h(
      "button",
      { type: "button", class: "btn btn-small", disabled: !page.next, onclick: () => go(1) },
      "Next →",
    );
    if (first) state.counted = true;
    const from = (state.cursors.length - 1) * PAGE + 1;
    const shown = state.counted
      ? `Showing ${fmtNumber(from)}–${fmtNumber(from + page.streams.length - 1)}`
      : `Showing ${fmtNumber(page.streams.length)} after “${state.cursors[state.cursors.length - 1]}”`;
    refill(
      body,
      h("div", { class: "table-wrap" }, table),
      h(
        "div",
        { class: "pager", dataset: { key: "pager" } },
        h("span", { id: "pager-range" }, shown),
        h("div", { class: "pager-buttons" }, previous, next),
      ),
    );
  }

  // Event types per stream come from each stream's info: a few at a time, this page only.
  async function details(list, id) {
    const queue = [...list];
    const worker = async () => {
      while (queue.length && id === loadId && !signal.aborted) {
        const { name } = queue.shift();
        try {
          const info = await api(`/v1/streams/${encodeURIComponent(name)}`, { signal });
          const cells = rows.get(name);
          if (cells && id === loadId) fill(cells.types, typeCell(info));
        } catch (error) {
          if (error.name === "AbortError") return;
          const cells = rows.get(name);
          if (cells) fill(cells.types, h("span", { class: "form-error", title: error.message }, "unavailable"));
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  function restart() {
    state.cursors = [""];
    load();
  }

  function go(step) {
    if (step > 0 && state.page?.next) state.cursors.push(state.page.next);
    else if (step < 0 && state.cursors.length > 1) state.cursors.pop();
    load().then(() => {
      // Keep the keyboard where it was: on the pager (the buttons were redrawn).
      const [previous, next] = body.querySelectorAll(".pager button");
      const wanted = step > 0 ? next : previous;
      (wanted && !wanted.disabled ? wanted : step > 0 ? previous : next)?.focus();
    });
  }

  search.addEventListener(
    "input",
    debounce(() => {
      state.prefix = search.value.trim();
      state.cursors = [""];
      load();
    }, 200),
  );
  load();
}
