// One event in a list: a row that expands to its data and metadata, pretty-printed.

import { h, timeAgo } from "./dom.js";
import { copyButton, dataBlock, jsonView, printableText } from "./ui.js";

function dataOf(event) {
  if ("data" in event) {
    const text = JSON.stringify(event.data, null, 2);
    return [dataBlock("data", jsonView(event.data), text)];
  }
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

/** An <li> for `event`; `expanded` opens it at once. */
export function eventItem(event, { expanded = false, fresh = false } = {}) {
  const bodyId = `event-${event.position}-body`;
  const body = h(
    "div",
    { class: "event-body", id: bodyId, hidden: !expanded },
    h(
      "dl",
      { class: "props" },
      h("dt", {}, "id"),
      h("dd", {}, h("code", {}, event.id), " ", copyButton(event.id, "Copy event id")),
      h("dt", {}, "created"),
      h("dd", {}, h("code", {}, event.created)),
      h("dt", {}, "content type"),
      h("dd", {}, h("code", {}, event.content_type)),
    ),
    dataOf(event),
    event.metadata !== null && event.metadata !== undefined
      ? dataBlock("metadata", jsonView(event.metadata), JSON.stringify(event.metadata, null, 2))
      : null,
  );
  const toggle = h(
    "button",
    { type: "button", class: "event-toggle", "aria-expanded": String(expanded), "aria-controls": bodyId },
    h("span", { class: "event-pos" }, `#${event.position}`),
    h("span", { class: "event-type" }, event.type, h("span", { class: "event-id" }, event.id.slice(0, 8))),
    h("span", { class: "event-time" }, timeAgo(event.created)),
    h("span", { class: "chevron", "aria-hidden": "true" }),
  );
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
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
