// Small building blocks shared by the pages: badges, the lag bar, JSON views, copy buttons,
// error messages and the confirmation dialog.

import { fill, fmtNumber, h, isDotSegment, subscriptionHref } from "./dom.js";

const STATUS_TONE = { active: "ok", retrying: "warn", paused: "bad" };

/** A status badge: a word and a dot, the color only a second cue. */
export function statusBadge(status) {
  return h(
    "span",
    { class: ["badge", `tone-${STATUS_TONE[status] || "neutral"}`], dataset: { status } },
    status,
  );
}

export function badge(text, tone = "neutral", title) {
  return h("span", { class: ["badge", `tone-${tone}`], title }, text);
}

/** How far a subscription is: position of head, the lag as the unfilled, tinted part. A
 * position past the head (a reset there) is flagged: events up to it will never be delivered. */
export function lagBar(position, head) {
  // `position` may be a BigInt (exact past 2^53): shown as it is, measured as a number.
  const at = Number(position);
  const beyond = BigInt(position) > BigInt(head);
  const lag = Math.max(head - at, 0);
  const ratio = head > 0 ? Math.min(at / head, 1) : 1;
  return h(
    "div",
    { class: "lag" },
    h(
      "div",
      {
        class: ["lag-bar", lag > 0 && "behind", beyond && "beyond"],
        role: "progressbar",
        "aria-label": "delivered",
        "aria-valuemin": "0",
        "aria-valuemax": String(head),
        "aria-valuenow": String(Math.min(at, head)),
        "aria-valuetext": beyond ? `position ${position}, beyond the head ${head}` : null,
      },
      h("div", { class: "lag-fill", style: { width: `${(ratio * 100).toFixed(2)}%` } }),
    ),
    h(
      "span",
      { class: "lag-text" },
      `${fmtNumber(position)} / ${fmtNumber(head)}`,
      lag > 0 ? h("span", { class: "lag-behind" }, ` · ${fmtNumber(lag)} behind`) : null,
      beyond
        ? h(
            "span",
            {
              class: "lag-beyond",
              title: `Events up to #${fmtNumber(position)} will be skipped, never delivered.`,
            },
            " · position beyond head",
          )
        : null,
    ),
  );
}

/** A link to a subscription's page; for "." and ".." (no page can be addressed) its name, and
 * where to manage it instead. */
export function subscriptionLink(name, attrs = {}) {
  if (!isDotSegment(name)) return h("a", { ...attrs, href: subscriptionHref(name) }, name);
  return h(
    "span",
    attrs,
    name,
    h(
      "span",
      { class: "hint" },
      " (browsers drop “.” and “..” from addresses: manage it through the API or the Python client)",
    ),
  );
}

/** Event types (and payload shapes) drawn before "Show all": a stream with 1,500 types made its
 * page 58,000 px tall, and its shapes tab froze. */
export const TYPES_SHOWN = 50;

/** "Show all `total`" (`onclick` draws the rest): under a list cut to its first `shown`. */
export function showAll(shown, total, onclick, id) {
  return h(
    "div",
    { class: "card-body hint", id },
    `The first ${fmtNumber(shown)} of ${fmtNumber(total)}. `,
    h("button", { type: "button", class: "btn btn-small", onclick }, `Show all ${fmtNumber(total)}`),
  );
}

/** A button copying `text()` to the clipboard, saying so for a moment. */
export function copyButton(text, label = "Copy") {
  const button = h(
    "button",
    { type: "button", class: "btn btn-small btn-ghost", "aria-label": label },
    "Copy",
  );
  button.addEventListener("click", async () => {
    const value = typeof text === "function" ? text() : text;
    try {
      await navigator.clipboard.writeText(value);
      button.textContent = "Copied";
    } catch {
      // The clipboard API needs a secure context (https or localhost): select the text instead.
      const area = h("textarea", { class: "visually-hidden", value });
      document.body.append(area);
      area.select();
      button.textContent = document.execCommand("copy") ? "Copied" : "Select and copy by hand";
      area.remove();
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1500);
  });
  return button;
}

const MAX_HIGHLIGHT = 200_000;

/** Pretty-printed JSON text (see formatJson) as text nodes, with token classes for color. */
/** A JSON string token; its text isolated (<bdi>) between its quotes: right-to-left text, or a
 * direction override, inside it cannot reorder the quotes or the tokens around it. */
function quoted(cls, token) {
  return h("span", { class: cls }, '"', h("bdi", {}, token.slice(1, -1)), '"');
}

export function jsonView(text) {
  const pre = h("pre", { class: "json" });
  if (text.length > MAX_HIGHLIGHT) {
    pre.textContent = text;
    return pre;
  }
  const tokens =
    /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([^"\w-]+|\w+|-)/g;
  for (const match of text.matchAll(tokens)) {
    const [, string, colon, literal, number] = match;
    if (string && colon) pre.append(quoted("j-key", string), colon);
    else if (string) pre.append(quoted("j-str", string));
    else if (literal) pre.append(h("span", { class: "j-lit" }, literal));
    else if (number) pre.append(h("span", { class: "j-num" }, number));
    else pre.append(match[0]);
  }
  return pre;
}

/** A labelled block of data with a copy button. */
export function dataBlock(label, body, copyText) {
  return h(
    "div",
    { class: "data-block" },
    h(
      "div",
      { class: "data-block-head" },
      h("span", { class: "label" }, label),
      copyButton(copyText, `Copy ${label}`),
    ),
    body,
  );
}

/** Base64 → its bytes as text when they are printable UTF-8, else null. */
export function printableText(base64) {
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return /^[\P{Cc}\t\n\r]*$/u.test(text) ? text : null;
  } catch {
    return null;
  }
}

/** An error message box (role=alert) for `error`, or nothing when `error` is null. */
export function errorBox(error, prefix = "") {
  if (!error) return null;
  const status = error.status ? ` (${error.status})` : "";
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("strong", {}, prefix || "Error", status, ": "),
    h("span", { class: "alert-text" }, error.message || String(error)),
  );
}

/** Put `error` in `slot` (an element), or empty it. */
export function showError(slot, error, prefix) {
  fill(slot, errorBox(error, prefix));
}

export function emptyState(title, ...body) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title), ...body);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/**
 * confirmDialog({title, body, confirm, danger, input}) → Promise of true/false (or the input's
 * value when `input` is given, null when cancelled). A native modal <dialog>: focus is trapped
 * and Escape cancels. A `danger` dialog starts on Cancel, so Enter, Enter cannot destroy.
 */
export function confirmDialog({ title, body, confirm = "Confirm", danger = false, input = null }) {
  return new Promise((resolve) => {
    const field = input
      ? h("input", { id: "dialog-input", class: "input", ...input.attrs, value: input.value ?? "" })
      : null;
    const error = h("div", { class: "form-error" });
    const cancel = h(
      "button",
      { type: "button", class: "btn", value: "cancel", onclick: () => dialog.close("cancel") },
      "Cancel",
    );
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "dialog-title" },
      h(
        "form",
        { method: "dialog", novalidate: true },
        h("h2", { id: "dialog-title" }, title),
        h("div", { class: "dialog-body" }, body),
        field ? h("label", { class: "field" }, h("span", { class: "label" }, input.label), field) : null,
        error,
        h(
          "div",
          { class: "dialog-actions" },
          cancel,
          h(
            "button",
            { type: "submit", class: ["btn", danger ? "btn-danger" : "btn-primary"], value: "ok" },
            confirm,
          ),
        ),
      ),
    );
    dialog.querySelector("form").addEventListener("submit", (event) => {
      if (field && input.validate) {
        const problem = input.validate(field.value);
        if (problem) {
          event.preventDefault();
          fill(error, problem);
          field.setAttribute("aria-invalid", "true");
          field.focus();
        }
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (dialog.returnValue !== "ok") resolve(input ? null : false);
      else resolve(input ? field.value : true);
    });
    document.body.append(dialog);
    dialog.showModal();
    (danger ? cancel : field || dialog.querySelector(".btn-primary")).focus();
  });
}

/** A card with a heading (and optional actions on its right). */
export function card(title, { actions = null, flush = false, id, headingId } = {}, ...body) {
  return h(
    "section",
    { class: "card", id, "aria-labelledby": headingId },
    title ? h("div", { class: "card-head" }, h("h2", { id: headingId }, title), actions) : null,
    h("div", { class: ["card-body", flush && "flush"] }, ...body),
  );
}

/** Why a subscription needs a look, or null. `lagGrowing` comes from watching it over time. */
export function attentionReason(sub, lagGrowing = false) {
  if (sub.status === "retrying") return sub.last_error ? `Retrying: ${sub.last_error}` : "Retrying";
  if (sub.status === "paused") return `Paused${sub.paused_reason ? `: ${sub.paused_reason}` : ""}`;
  if (sub.parked > 0) return `${fmtNumber(sub.parked)} parked event${sub.parked === 1 ? "" : "s"}`;
  if (lagGrowing) return `Lag growing: ${fmtNumber(sub.lag)} behind`;
  return null;
}

/** Order for "Needs attention": as attentionRank, but a subscription paused by hand behind
 * a growing lag (someone chose to pause it; 25 such pushed a lag growing by thousands out of
 * sight), one with a lag before one caught up. */
export function attentionOrder(sub, lagGrowing = false) {
  if (sub.status === "paused" && sub.paused_reason === PAUSED_BY_HAND) return sub.lag > 0 ? 3.5 : 3.75;
  return attentionRank(sub, lagGrowing);
}

const PAUSED_BY_HAND = "API request"; // the reason a pause asked for records (original-api.md)

/** Order for "needs attention first": retrying, paused, parked, growing lag, lag, the rest. */
export function attentionRank(sub, lagGrowing = false) {
  if (sub.status === "retrying") return 0;
  if (sub.status === "paused") return 1;
  if (sub.parked > 0) return 2;
  if (lagGrowing) return 3;
  if (sub.lag > 0) return 4;
  return 5;
}

// A subscription deleted on its page is said on the list that page goes to (the page is gone).
const DELETED = "eventor.deleted-subscription";

export function tellDeleted(name) {
  try {
    sessionStorage.setItem(DELETED, name);
  } catch {
    // storage refused (a private window, say): the list shows without the note
  }
}

/** The name tellDeleted() left for this page, once; null when there is none. */
export function takeDeleted() {
  try {
    const name = sessionStorage.getItem(DELETED);
    sessionStorage.removeItem(DELETED);
    return name;
  } catch {
    return null;
  }
}

/** Asks again before a position past the stream's head (a reset there, or a new subscription
 * starting after it): accepted by the API, it skips the events still to come up to it.
 * `action` ends the question ("Reset there"), `confirm` is its button. */
export function confirmBeyondHead({ stream, position, head, action, confirm }) {
  return confirmDialog({
    title: `#${fmtNumber(position)} is beyond the stream's head`,
    body: [
      h(
        "p",
        { id: "beyond-head-warning" },
        `The stream “${stream}” ends at #${fmtNumber(head)}: `,
        position - head === 1n
          ? `the next event appended to it (#${fmtNumber(position)}) is skipped, never delivered.`
          : `the next ${fmtNumber(position - head)} events appended to it (#${fmtNumber(head + 1n)} to ` +
              `#${fmtNumber(position)}) are skipped, never delivered.`,
      ),
      h("p", {}, `${action} all the same?`),
    ],
    confirm,
    danger: true,
  });
}
