// One subscription: status and progress, actions (pause, resume, reset, delete), its
// configuration (never the secret), the delivery attempt log, and parked events with replay.

import { api } from "../api.js";
import {
  SUBSCRIPTION_NAME,
  fill,
  fmtNumber,
  h,
  pageTitle,
  refill,
  seg,
  streamHref,
  timeAgo,
} from "../dom.js";
import { navigate, retryWhenOnline } from "../router.js";
import { onConnection, onStats, readNow } from "../stats.js";
import {
  badge,
  card,
  confirmBeyondHead,
  confirmDialog,
  emptyState,
  errorBox,
  lagBar,
  loading,
  showAll,
  statusBadge,
  tellDeleted,
} from "../ui.js";

const LOG_SIZE = 50;
/** Parked events drawn until asked for all: 10,000 took seconds to draw, and again at each refresh. */
const PARKED_ROWS = 100;
const MAX_POSITION = 2n ** 62n; // the API's limit for a position

function seconds(value) {
  return `${value} s`;
}

/** `value` as ••••••, with a button that shows it (and hides it again); `what` names it. */
function masked(value, what) {
  const shown = h("span", { class: "masked" }, "••••••");
  const reveal = h(
    "button",
    { type: "button", class: "btn btn-small btn-ghost", "aria-label": `Show ${what}` },
    "Show",
  );
  reveal.addEventListener("click", () => {
    const hidden = shown.classList.toggle("masked");
    shown.textContent = hidden ? "••••••" : value;
    reveal.textContent = hidden ? "Show" : "Hide";
    reveal.setAttribute("aria-label", `${hidden ? "Show" : "Hide"} ${what}`);
  });
  return [shown, " ", reveal];
}

function maskedHeader(name, value) {
  return h("div", {}, h("code", {}, name), ": ", ...masked(value, `the value of ${name}`));
}

// `scheme://user:password@`: the password is a receiver's credential, as header values are.
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^@/?#:]*:)([^@/?#]*)(@.*)$/is;

function maskedUrl(url) {
  const parts = URL_PASSWORD.exec(url);
  if (!parts) return h("code", {}, url);
  const [, before, password, after] = parts;
  const [shown, , reveal] = masked(password, "the URL's password");
  return [h("code", {}, before, shown, after), " ", reveal];
}

function configView(sub) {
  const c = sub.config;
  const row = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
  const headers = Object.entries(c.headers || {});
  return h(
    "dl",
    { class: "props", id: "config" },
    row("Stream", h("a", { href: streamHref(c.stream) }, c.stream)),
    row("URL", maskedUrl(c.url)),
    row(
      "Headers",
      headers.length ? headers.map(([n, v]) => maskedHeader(n, v)) : h("span", { class: "muted" }, "none"),
    ),
    row(
      "Event types",
      c.event_types
        ? h(
            "div",
            { class: "chips" },
            c.event_types.map((t) => h("span", { class: "chip" }, h("bdi", {}, t))),
          )
        : h("span", { class: "muted" }, "all"),
    ),
    row("Signing", c.secret_set ? badge("secret set", "ok") : h("span", { class: "muted" }, "not signed")),
    row("Batch size", String(c.batch_size)),
    row("Timeout", seconds(c.timeout)),
    row("Attempts", c.max_attempts === 0 ? "retry forever" : `${c.max_attempts} per event`),
    row("Backoff", `${seconds(c.backoff.initial)} → ${seconds(c.backoff.max)}`),
    row("When exhausted", c.on_exhausted === "park" ? "park the event, go on" : "pause"),
    row(
      "Created",
      timeAgo(sub.created),
      c.created_by === "original" ? [" ", badge("original API", "neutral")] : null,
    ),
  );
}

function resultBadge(delivery) {
  if (delivery.status_code !== null && delivery.status_code >= 200 && delivery.status_code < 300)
    return badge(String(delivery.status_code), "ok");
  return badge(delivery.status_code !== null ? String(delivery.status_code) : "error", "bad");
}

function deliveriesView(deliveries) {
  if (!deliveries.length) return emptyState("No attempts yet");
  return h(
    "table",
    { class: "table stackable flow", id: "deliveries" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["When", "Position", "Attempt", "Result", "Duration", "Details"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      deliveries.map((d) =>
        h(
          "tr",
          {
            dataset: {
              position: String(d.position),
              attempt: String(d.attempt),
              key: `${d.at} ${d.attempt}`,
            },
          },
          h("td", {}, timeAgo(d.at)),
          h(
            "td",
            { class: "num", "data-label": "position" },
            fmtNumber(d.position),
            // A batch: its range, and how many events it carried (event_types skip some).
            d.events > 1
              ? h(
                  "span",
                  { class: "batch-range" },
                  `–${fmtNumber(d.last_position)} (${fmtNumber(d.events)} events)`,
                )
              : null,
          ),
          h("td", { class: "num", "data-label": "attempt" }, String(d.attempt)),
          h("td", {}, resultBadge(d)),
          h("td", { class: "num", "data-label": "took" }, `${Math.round(d.duration_ms)} ms`),
          h(
            "td",
            { class: "wide" },
            d.error ? h("div", { class: "form-error delivery-error" }, d.error) : null,
            d.response_excerpt
              ? h(
                  "details",
                  {},
                  h("summary", { class: "hint" }, "Response"),
                  h("pre", { class: "text" }, d.response_excerpt),
                )
              : null,
          ),
        ),
      ),
    ),
  );
}

/** The parked events read (the first PARKED_ROWS of `total`, or all); `onAll` asks for all. */
function parkedView(parked, total, onAll) {
  if (!parked.length)
    return emptyState(
      "No parked events",
      h("p", {}, "Events that exhaust their attempts under the park policy wait here."),
    );
  const table = h(
    "table",
    { class: "table stackable flow", id: "parked" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Position", "Event id", "Error", "Parked"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      parked.map((p) =>
        h(
          "tr",
          { dataset: { position: String(p.position), key: String(p.position) } },
          h("td", { class: "num", "data-label": "position" }, fmtNumber(p.position)),
          h("td", { class: "wide" }, h("code", {}, p.event_id)),
          h("td", { class: "wide form-error" }, p.error),
          h("td", { "data-label": "parked" }, timeAgo(p.at)),
        ),
      ),
    ),
  );
  const more = parked.length < total ? showAll(parked.length, total, onAll, "parked-more") : null;
  return [table, more];
}

export default async function subscription(main, { params: [name], signal, setTitle }) {
  setTitle(name);
  const base = `/v1/subscriptions/${seg(name)}`;
  const badgeSlot = h("span", { id: "status" });
  const notice = h("div", { id: "notice" });
  const actionError = h("div", { id: "action-error" });
  const progress = h("div", {}, loading());
  const deliveries = h("div", {}, loading());
  const parked = h("div", {}, loading());
  const config = h("div", {}, loading());
  const toggle = h("button", { type: "button", class: "btn", id: "toggle-pause", disabled: true }, "Pause");
  const replay = h(
    "button",
    { type: "button", class: "btn btn-small", id: "replay-parked", disabled: true },
    "Replay parked",
  );
  let sub = null;
  let shownConfig = ""; // the configuration drawn: redrawn only when it changes

  const resetButton = h(
    "button",
    { type: "button", class: "btn", id: "reset", disabled: true, onclick: () => reset() },
    "Reset…",
  );
  const deleteButton = h(
    "button",
    { type: "button", class: "btn btn-danger", id: "delete", disabled: true, onclick: () => remove() },
    "Delete…",
  );
  const actions = h(
    "div",
    { class: "actions" },
    toggle,
    h("a", { class: "btn", href: `/dashboard/new-subscription?edit=${seg(name)}` }, "Edit"),
    resetButton,
    deleteButton,
  );
  const head = h(
    "div",
    { class: "page-head" },
    h(
      "div",
      {},
      h(
        "nav",
        { class: "crumbs", "aria-label": "Breadcrumb" },
        h("a", { href: "/dashboard/subscriptions" }, "Subscriptions"),
        " / ",
      ),
      h("div", { class: "title-row" }, pageTitle(name), badgeSlot),
    ),
    actions,
  );
  if (!SUBSCRIPTION_NAME.test(name)) {
    actions.remove();
    fill(
      main,
      head,
      errorBox(
        new Error("Subscription names are 1-100 characters of A-Z a-z 0-9 _ - ."),
        `“${name}” is not a subscription name`,
      ),
    );
    return;
  }
  fill(
    main,
    head,
    actionError,
    notice,
    h(
      "div",
      { class: "grid-2" },
      h(
        "div",
        { class: "stack" },
        card("Progress", { id: "progress" }, progress),
        card(
          "Delivery attempts",
          {
            id: "attempts",
            flush: true,
            actions: h("span", { class: "hint" }, `latest ${LOG_SIZE}, newest first`),
          },
          deliveries,
        ),
        card("Parked events", { id: "parked-events", flush: true, actions: replay }, parked),
      ),
      card("Configuration", { id: "configuration" }, config),
    ),
  );

  function renderStatus() {
    fill(badgeSlot, statusBadge(sub.status));
    enableActions();
    toggle.textContent = sub.status === "paused" ? "Resume" : "Pause";
    toggle.className = sub.status === "paused" ? "btn btn-primary" : "btn";
    if (sub.status === "paused") {
      fill(
        notice,
        h(
          "div",
          { class: "alert alert-warn", role: "status" },
          h("strong", {}, "Paused"),
          sub.paused_reason ? `: ${sub.paused_reason}` : "",
        ),
      );
    } else if (sub.status === "retrying") {
      fill(
        notice,
        h(
          "div",
          { class: "alert alert-error", role: "status" },
          h("strong", {}, `Retrying event #${fmtNumber(sub.position + 1n)}`),
          ` after ${fmtNumber(sub.attempts)} failed attempt${sub.attempts === 1 ? "" : "s"}: `,
          sub.last_error || "",
          sub.next_attempt_at
            ? h("span", { id: "next-attempt" }, ". Next attempt ", timeAgo(sub.next_attempt_at), ".")
            : null,
        ),
      );
    } else fill(notice);
    fill(
      progress,
      lagBar(sub.position, sub.head),
      h(
        "p",
        { class: "meta" },
        h("span", {}, "delivered up to ", h("strong", { id: "position" }, `#${fmtNumber(sub.position)}`)),
        h("span", {}, "stream head ", h("strong", {}, `#${fmtNumber(sub.head)}`)),
        h("span", {}, "lag ", h("strong", { id: "lag" }, fmtNumber(sub.lag))),
        h("span", {}, "last delivery ", timeAgo(sub.last_delivered_at)),
      ),
      sub.last_error
        ? h("p", { class: "form-error", id: "last-error" }, "Last error: ", sub.last_error)
        : null,
    );
    // Redrawn on change only: a refresh must not mask a header value the reader revealed,
    // nor drop a selection they are copying (relative times update on their own).
    const configKey = JSON.stringify([sub.config, sub.created]);
    if (configKey !== shownConfig) {
      shownConfig = configKey;
      fill(config, configView(sub));
    }
  }

  // An action's request on its way: every action button waits for its answer (a double click
  // on Pause paused, then resumed; one on Replay sent it twice).
  let acting = false;
  function enableActions() {
    const off = acting || isGone || !sub;
    toggle.disabled = off;
    resetButton.disabled = off;
    deleteButton.disabled = off;
    replay.disabled = off || sub.parked === 0;
  }
  /** Run `request` with the action buttons disabled, the focus kept on the one clicked. */
  async function busy(request) {
    const focused = document.activeElement;
    acting = true;
    enableActions();
    try {
      await request();
    } finally {
      acting = false;
      enableActions();
      // (the disabled button lost it to the page, or a click on it did)
      const lost = document.activeElement === document.body || document.activeElement === main;
      if (lost && main.contains(focused) && !focused.disabled) focused.focus();
    }
  }

  // The parked events as read (the first PARKED_ROWS, or all once asked for), how many there
  // are, when they were read (see refresh), and as drawn.
  let parkedList = [];
  let parkedTotal = 0;
  let parkedReadAt = null;
  let parkedDrawn = null;
  let allParked = false;
  // Only the latest read's list is kept: a refresh's first PARKED_ROWS, answered after "Show
  // all" read them all, would cut the list back.
  let parkedReads = 0;
  async function readParked() {
    const read = ++parkedReads;
    const query = allParked ? {} : { limit: PARKED_ROWS };
    const { parked: list } = await api(`${base}/parked`, { query, signal });
    return read === parkedReads ? list : null;
  }
  async function showAllParked() {
    allParked = true;
    let list;
    try {
      list = await readParked();
    } catch (error) {
      if (error.name === "AbortError") return;
      allParked = false;
      showActionError(error, "Could not read the parked events");
      return;
    }
    if (!list) return; // a later read has it
    parkedList = list;
    parkedTotal = list.length;
    drawParked();
    // The keyboard goes on from the first row drawn now, not from the top of the page.
    const first = parked.querySelectorAll("#parked tbody tr")[PARKED_ROWS];
    if (first) {
      first.tabIndex = -1;
      first.focus();
    }
  }
  function drawParked() {
    // Drawn again only when they changed: thousands took seconds, and every counter of the
    // server moving (any delivery anywhere) redrew them.
    const drawn = `${parkedTotal}\n${parkedList.map((p) => `${p.position} ${p.at}`).join("\n")}`;
    if (drawn === parkedDrawn) return;
    parkedDrawn = drawn;
    // (refill: the focus kept on its row)
    refill(parked, parkedView(parkedList, parkedTotal, showAllParked));
  }

  let refreshing = false;
  let deleting = false; // no refresh may race the DELETE into a 404
  let isGone = false; // deleted elsewhere: nothing may bring the page back to life
  async function refresh() {
    if (refreshing || deleting || isGone) return;
    refreshing = true;
    try {
      const [status, log] = await Promise.all([
        api(base, { signal, exact: "position" }),
        api(`${base}/deliveries`, { query: { limit: LOG_SIZE }, signal }),
      ]);
      // Events are parked (and unparked by a replay) only by delivery attempts: the list is
      // read again when the newest attempt or the count moved, not at each refresh (10,000
      // parked events are 2.4 MB); only the first PARKED_ROWS until all are asked for.
      const newest = log.deliveries[0];
      const readAt = JSON.stringify([status.parked, String(status.position), newest?.at, newest?.attempt]);
      if (readAt !== parkedReadAt) {
        const list = await readParked();
        if (list) {
          parkedList = list;
          parkedTotal = allParked ? list.length : status.parked;
          parkedReadAt = readAt;
        }
      }
      if (isGone) return;
      sub = status;
      renderStatus();
      // Drawn anew at each refresh: an opened Response, and the focus, kept.
      refill(deliveries, deliveriesView(log.deliveries));
      drawParked();
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 404 && !sub) {
        actions.remove(); // nothing to act on
        fill(
          main,
          head,
          errorBox(error, "No such subscription"),
          h("p", {}, h("a", { href: "/dashboard/subscriptions" }, "All subscriptions")),
        );
        return;
      }
      if (error.status === 404) {
        gone();
        return;
      }
      fill(notice, errorBox(error, "Could not refresh"));
      if (!sub) retryWhenOnline(error); // never read: nothing here refreshes it
    } finally {
      refreshing = false;
    }
  }

  /** Deleted elsewhere while this page was open: say so, and offer nothing to act on. */
  function gone() {
    isGone = true; // no more refreshes (each would be three 404s), no late answer rendered
    for (const control of actions.querySelectorAll("button")) control.disabled = true;
    actions.querySelector("a")?.remove(); // an edit would create it anew
    replay.disabled = true;
    fill(badgeSlot, badge("deleted", "bad"));
    fill(
      notice,
      h(
        "div",
        { class: "alert alert-error", role: "alert", id: "gone" },
        h("strong", {}, "Deleted"),
        " — this subscription no longer exists (deleted elsewhere). ",
        h("a", { href: "/dashboard/subscriptions" }, "All subscriptions"),
      ),
    );
  }

  // An action's outcome. That the server could not be reached is said until it answers again
  // (the page, read again then, shows whether the action was done): it stayed for good.
  let unanswered = false;
  function showAction(...content) {
    unanswered = false;
    fill(actionError, ...content);
  }
  function showActionError(error, prefix) {
    showAction(errorBox(error, prefix));
    unanswered = !error.status;
    if (unanswered) readNow(); // the header says at once whether the server is reachable
  }
  const stopConnection = onConnection((state) => {
    if (state === "open" && unanswered) showAction();
  });
  signal.addEventListener("abort", stopConnection);

  const act = (path, body, doneText) =>
    busy(async () => {
      showAction();
      try {
        const answer = await api(`${base}/${path}`, { method: "POST", body, signal, exact: "position" });
        if (isGone) return; // deleted while the answer was on its way
        sub = answer;
        renderStatus();
        if (doneText) showAction(h("div", { class: "alert alert-ok", role: "status" }, doneText));
        refresh();
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error.status === 404) {
          gone();
          return;
        }
        // status 0: nothing came back, so nothing was refused
        showActionError(error, error.status ? "The server refused" : "No answer from the server");
      }
    });

  // The second click of a double click (detail 2) is not a second action, even when the first
  // one's answer is in already and the button says "Resume".
  toggle.addEventListener(
    "click",
    (event) => event.detail < 2 && act(sub.status === "paused" ? "resume" : "pause"),
  );
  replay.addEventListener("click", (event) => event.detail < 2 && busy(replayParked));
  async function replayParked() {
    showAction();
    try {
      const { replaying } = await api(`${base}/parked/replay`, { method: "POST", signal });
      if (isGone) return;
      showAction(
        h(
          "div",
          { class: "alert alert-ok", role: "status" },
          `Replaying ${fmtNumber(replaying)} parked event${replaying === 1 ? "" : "s"}`,
          sub?.status === "paused" ? " once the subscription is resumed" : "",
          // Said once: the list below is what tells how far it has gone.
          ": each one delivered leaves the list of parked events below; one that fails again stays.",
        ),
      );
      refresh();
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 404) gone();
      else showActionError(error, "Could not replay");
    }
  }

  async function reset() {
    const value = await confirmDialog({
      title: `Reset “${name}”?`,
      body: [
        h("p", {}, "Give the last position to count as delivered: the next delivery is the event after it."),
        h(
          "p",
          {},
          "A lower position delivers events again; a higher one skips them, and they are never delivered.",
        ),
      ],
      confirm: "Reset position",
      danger: true,
      input: {
        label: `Position (0 = from the start; the stream's head is ${sub ? sub.head : "?"})`,
        value: sub ? String(sub.position) : "0",
        attrs: { type: "text", inputmode: "numeric", autocomplete: "off", spellcheck: "false" },
        validate: (text) => {
          if (!/^\d+$/.test(text.trim())) return "A whole number, 0 or more.";
          if (BigInt(text.trim()) > MAX_POSITION)
            return `Too large: a position is at most ${MAX_POSITION} (2^62).`;
          return null;
        },
      },
    });
    if (value === null) return;
    // As typed, however large: Number() would round it past 2^53, and JSON.stringify with it.
    const position = BigInt(value.trim());
    const head = BigInt(sub.head);
    if (position > head) {
      const stream = sub.config.stream;
      const question = { stream, position, head, action: "Reset there", confirm: "Skip them and reset" };
      if (!(await confirmBeyondHead(question))) return;
    }
    await act("reset", `{"position": ${position}}`, `Reset: the next delivery is #${position + 1n}.`);
  }

  async function remove() {
    const yes = await confirmDialog({
      title: `Delete “${name}”?`,
      body: h(
        "p",
        {},
        "Deliveries stop at once and its position is forgotten. The stream and its events stay.",
      ),
      confirm: "Delete subscription",
      danger: true,
    });
    if (!yes) return;
    await busy(async () => {
      try {
        deleting = true;
        await api(base, { method: "DELETE", signal });
        tellDeleted(name);
        navigate("/dashboard/subscriptions", { replace: true }); // Back cannot return to a 404
      } catch (error) {
        deleting = false;
        if (error.name === "AbortError") return;
        if (error.status === 404) gone(); // deleted elsewhere first: what was asked is done
        else showActionError(error, "Could not delete");
      }
    });
  }

  await refresh();
  let seen = "";
  const stop = onStats((stats) => {
    const key = JSON.stringify([
      stats.latest.counters,
      stats.latest.subscriptions,
      stats.latest.streams.events,
    ]);
    if (key !== seen) {
      seen = key;
      if (sub) refresh();
    }
  });
  signal.addEventListener("abort", stop);
}
