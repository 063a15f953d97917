// The "append a test event" form: type + JSON data (+ optional metadata), checked before it is
// sent; the API's own error is shown in the form when it refuses.

import { api } from "./api.js";
import { fill, h, seg } from "./dom.js";
import { errorBox } from "./ui.js";

/** Where JSON.parse failed, in words a person can act on. */
export function jsonProblem(text, { objectOnly = false, allowEmpty = false } = {}) {
  if (!text.trim()) return allowEmpty ? null : "Enter a JSON value, e.g. {} or null.";
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const at = /position (\d+)/.exec(error.message);
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split("\n").length;
      const column = before.length - before.lastIndexOf("\n");
      // Said once: V8 adds "at position 8 (line 1 column 9)" to its message itself.
      const reason = error.message.replace(/ at position \d+.*$/, "");
      return `Not valid JSON (line ${line}, column ${column}): ${reason}.`;
    }
    return `Not valid JSON: ${error.message}`;
  }
  if (objectOnly && (value === null || typeof value !== "object" || Array.isArray(value))) {
    return 'Metadata must be a JSON object, e.g. {"correlation_id": "…"}.';
  }
  return null;
}

function field(id, label, control, hint) {
  const error = h("div", { class: "form-error", id: `${id}-error`, "aria-live": "polite" });
  control.id = id;
  control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
  return {
    element: h(
      "div",
      { class: "field" },
      h("label", { class: "label", for: id }, label),
      control,
      hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
      error,
    ),
    setError(message) {
      error.textContent = message || "";
      if (message) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    },
  };
}

/** The form for `stream`; onAppended(result) after a success. `types` suggests event types. */
export function appendForm(stream, { types = [], onAppended = () => {}, signal } = {}) {
  const typeInput = h("input", {
    class: "input",
    required: true,
    maxlength: "200",
    list: "known-types",
    autocomplete: "off",
    value: types[0] || "",
  });
  const dataInput = h("textarea", {
    class: "input",
    rows: "7",
    spellcheck: "false",
    value: '{\n  "example": true\n}',
  });
  const metaInput = h("textarea", {
    class: "input short",
    rows: "2",
    spellcheck: "false",
    placeholder: '{"correlation_id": "…"}',
  });
  const type = field("append-type", "Event type", typeInput);
  const data = field("append-data", "Data (JSON)", dataInput);
  const meta = field("append-metadata", "Metadata (JSON object, optional)", metaInput);
  const result = h("div", { id: "append-result" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Append event");

  const check = () => {
    const problems = {
      type: typeInput.value.trim() ? null : "Give the event a type, e.g. OrderPlaced.",
      data: jsonProblem(dataInput.value),
      meta: jsonProblem(metaInput.value, { objectOnly: true, allowEmpty: true }),
    };
    type.setError(problems.type);
    data.setError(problems.data);
    meta.setError(problems.meta);
    return problems;
  };

  const form = h(
    "form",
    { id: "append-form", novalidate: true },
    h(
      "datalist",
      { id: "known-types" },
      types.map((t) => h("option", { value: t })),
    ),
    type.element,
    data.element,
    meta.element,
    result,
    h("div", { class: "actions" }, submit),
  );
  // Checked on submit; once a field shows an error, re-checked as it is edited. (Not on blur:
  // an error appearing then moves the button away from the click that caused the blur.)
  for (const input of [typeInput, dataInput, metaInput]) {
    input.addEventListener("input", () => input.hasAttribute("aria-invalid") && check());
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(result);
    const problems = check();
    const first = [problems.type && typeInput, problems.data && dataInput, problems.meta && metaInput].find(
      Boolean,
    );
    if (first) {
      first.focus();
      return;
    }
    // The data goes as typed (checked above to be JSON): the store keeps its bytes exactly,
    // and a parse/stringify round trip would round big numbers and reformat it.
    const metadata = metaInput.value.trim() ? `, "metadata": ${metaInput.value.trim()}` : "";
    const body = `{"type": ${JSON.stringify(typeInput.value.trim())}, "data": ${dataInput.value.trim()}${metadata}}`;
    const focused = document.activeElement;
    submit.disabled = true;
    try {
      const appended = await api(`/v1/streams/${seg(stream)}/events`, { method: "POST", body, signal });
      fill(
        result,
        h("div", { class: "alert alert-ok", role: "status" }, `Appended as #${appended.first_position}.`),
      );
      onAppended(appended);
    } catch (error) {
      if (error.name !== "AbortError")
        // status 0: no answer at all, so nothing was refused
        fill(result, errorBox(error, error.status ? "The server refused the event" : "The event was not appended"));
    } finally {
      submit.disabled = false;
      // Disabled, the button lost the focus to the page: given back, unless it went elsewhere.
      if (document.activeElement === document.body && form.contains(focused)) focused.focus();
    }
  });
  return form;
}
