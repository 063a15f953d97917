// One event in a list: a row that expands to its data and metadata, pretty-printed with their
// numbers as the API sent them (see json.js).

import { append, h, timeAgo } from "./dom.js";
import { formatJson } from "./json.js";
import { copyButton, dataBlock, jsonView, printableText } from "./ui.js";

function jsonBlock(label, value) {
  const text = formatJson(value);
  return dataBlock(label, jsonView(text), text);
}

/** An event's data as the API gave it: JSON pretty-printed, other bytes as base64 (and as
 * text when they are printable). */
export function eventData(event) {
  if ("data" in event) return [jsonBlock("data", event.data)];
  if ("data_base64" in event) {
    const decoded = printableText(event.data_base64);
    return [
      dataBlock("data_base64", h("pre", { class: "text" }, event.data_base64), event.data_base64),
      decoded !== null
        ? dataBlock("data, decoded as text", h("pre", { class: "text" }, decoded), decoded)
        : h("p", { class: "hint" }, "The data is binary: shown as base64 only."),
    ];
  }
  return [h("p", { class: "hint" }, "No data.")];
}

function details(event) {
  return [
    h(
      "dl",
      { class: "props" },
      // The whole type: the row above cuts a long one short.
      h("dt", {}, "type"),
      h("dd", { class: "event-full-type" }, h("bdi", {}, event.type)),
      h("dt", {}, "id"),
      h("dd", {}, h("code", {}, event.id), " ", copyButton(event.id, "Copy event id")),
      h("dt", {}, "created"),
      h("dd", {}, h("code", {}, event.created)),
      h("dt", {}, "content type"),
      h("dd", {}, h("code", {}, event.content_type)),
    ),
    eventData(event),
    event.metadata !== null && event.metadata !== undefined ? jsonBlock("metadata", event.metadata) : null,
  ];
}

/** An <li> for `event`; `expanded` opens it at once. */
export function eventItem(event, { expanded = false, fresh = false } = {}) {
  const bodyId = `event-${event.position}-body`;
  // Filled when first opened: a page of large events is not formatted until someone looks.
  const body = h("div", { class: "event-body", id: bodyId, hidden: !expanded }, expanded && details(event));
  const toggle = h(
    "button",
    { type: "button", class: "event-toggle", "aria-expanded": String(expanded), "aria-controls": bodyId },
    h("span", { class: "event-pos" }, `#${event.position}`),
    // The end of the id: time-ordered (v7) ids of one stream share their beginning.
    // <bdi>: a right-to-left override in a type must not reorder the id beside it.
    h(
      "span",
      { class: "event-type", title: event.type },
      h("bdi", {}, event.type),
      h("span", { class: "event-id" }, event.id.slice(-12)),
    ),
    h("span", { class: "event-time" }, timeAgo(event.created)),
    h("span", { class: "chevron", "aria-hidden": "true" }),
  );
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    if (open && !body.hasChildNodes()) append(body, details(event));
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
  });
  return h(
    "li",
    { class: ["event", fresh && "new"], dataset: { position: String(event.position) } },
    toggle,
    body,
  );
}
