// Create a subscription (or edit one: ?edit=<name>). Checked here first for what is plainly
// wrong; the API's own message is shown on the field it concerns.

import { api } from "../api.js";
import {
  STREAM_NAME,
  SUBSCRIPTION_NAME,
  debounce,
  fill,
  fmtNumber,
  h,
  isDotSegment,
  pageTitle,
  seg,
  subscriptionHref,
  timeAgo,
} from "../dom.js";
import { navigate, retryWhenOnline } from "../router.js";
import { TYPES_SHOWN, confirmBeyondHead, confirmDialog, errorBox, loading } from "../ui.js";

// API messages name the option they are about; the earliest named one gets the message.
const FIELD_WORDS = [
  ["subscription name", "name"],
  ["backoff.initial", "backoff_initial"],
  ["backoff.max", "backoff_max"],
  ["stream", "stream"],
  ["url", "url"],
  ["header", "headers"],
  ["start", "start"],
  ["event_types", "event_types"],
  ["secret", "secret"],
  ["batch_size", "batch_size"],
  ["timeout", "timeout"],
  ["max_attempts", "max_attempts"],
  ["on_exhausted", "on_exhausted"],
];

const MAX_POSITION = 2n ** 62n; // the API's limit for a position

/** The stream's head, 0 for a stream with no event yet. */
async function headOf(stream, signal) {
  try {
    return BigInt((await api(`/v1/streams/${seg(stream)}`, { signal })).head); // < 2^53: appended one by one
  } catch (error) {
    if (error.status === 404) return 0n;
    throw error;
  }
}

/** The body as JSON, a BigInt start position written with all its digits. */
function toJson(body) {
  const { start, ...rest } = body;
  if (typeof start !== "bigint") return JSON.stringify(body);
  return `${JSON.stringify(rest).slice(0, -1)},"start":${start}}`;
}

export function fieldOf(message) {
  const text = message.toLowerCase();
  let best = null;
  for (const [word, key] of FIELD_WORDS) {
    const at = text.indexOf(word);
    if (at >= 0 && (best === null || at < best.at)) best = { at, key };
  }
  return best?.key ?? null;
}

function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

export default async function subscriptionForm(main, { query, signal, setTitle }) {
  const editing = query.get("edit");
  setTitle(editing ? `Edit ${editing}` : "New subscription");
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
        editing ? [" / ", h("a", { href: subscriptionHref(editing) }, editing)] : null,
        " / ",
      ),
      pageTitle(editing ? `Edit “${editing}”` : "New subscription"),
      h(
        "p",
        { class: "page-sub" },
        "Pushes a stream's events to a webhook, one request at a time, in order, at least once.",
      ),
    ),
  );
  let current = null;
  if (editing) {
    fill(main, head, loading());
    try {
      current = await api(`/v1/subscriptions/${seg(editing)}`, { signal });
    } catch (error) {
      if (error.name !== "AbortError") fill(main, head, errorBox(error, "Could not load the subscription"));
      retryWhenOnline(error);
      return;
    }
  }
  const c = current?.config;

  const errors = {};
  const controls = {};
  const field = (key, label, control, hint) => {
    const id = `sub-${key.replace("_", "-")}`;
    control.id = control.id || id;
    errors[key] = h("div", { class: "form-error", id: `${id}-error` });
    controls[key] = control;
    control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
    return h(
      "div",
      { class: "field" },
      h("label", { class: "label", for: control.id }, label),
      control,
      hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
      errors[key],
    );
  };

  const nameInput = h("input", {
    class: "input",
    name: "name",
    required: true,
    maxlength: "100",
    autocomplete: "off",
    spellcheck: "false",
    value: editing || "",
  });
  const streamInput = h("input", {
    class: "input",
    name: "stream",
    required: true,
    list: "stream-options",
    autocomplete: "off",
    spellcheck: "false",
    value: c?.stream || query.get("stream") || "",
    disabled: !!editing,
  });
  const streamOptions = h("datalist", { id: "stream-options" });
  const urlInput = h("input", {
    class: "input",
    name: "url",
    type: "url",
    required: true,
    placeholder: "https://example.com/hooks/orders",
    value: c?.url || "",
    spellcheck: "false",
  });
  const headerRows = h("div", { class: "header-rows" });
  const typeChoices = h("div", { class: "chips type-choices" });
  // The chosen types, each exactly as it is: never split or joined (a type may hold a comma).
  const types = [...(c?.event_types || [])];
  const typeList = h("ul", {
    class: "chips type-list",
    id: "sub-event-types-list",
    "aria-label": "Chosen event types",
  });
  const typesInput = h("input", {
    class: "input",
    name: "event_types",
    placeholder: "a type, e.g. OrderPlaced",
    autocomplete: "off",
  });
  const secretInput = h("input", {
    class: "input mono",
    name: "secret",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: editing && c?.secret_set ? "(unchanged)" : "none: deliveries are not signed",
  });
  const removeSecret = h("input", { type: "checkbox", id: "sub-remove-secret" });
  const startPosition = h("input", {
    class: "input",
    type: "number",
    min: "0",
    id: "sub-start-position",
    value: "0",
    "aria-label": "Start after position",
  });
  // A position typed (or the field entered) means "after position": it was ignored unless its
  // radio button was clicked too, and the whole stream delivered.
  for (const type of ["focus", "input"])
    startPosition.addEventListener(type, () => {
      form.querySelector("input[name=start][value=position]").checked = true;
    });
  const number = (key, value, attrs = {}) =>
    h("input", { class: "input", type: "number", name: key, value: String(value), step: "any", ...attrs });
  controls.start = startPosition;
  const batch = number("batch_size", c?.batch_size ?? 1, { min: "1", max: "1000", step: "1" });
  const timeout = number("timeout", c?.timeout ?? 10, { min: "0.001" });
  const attempts = number("max_attempts", c?.max_attempts ?? 5, { min: "0", max: "1000000", step: "1" });
  const backoffInitial = number("backoff_initial", c?.backoff.initial ?? 1, { min: "0.001" });
  const backoffMax = number("backoff_max", c?.backoff.max ?? 300, { min: "0.001" });
  const onExhausted = h(
    "select",
    { class: "input", name: "on_exhausted", value: c?.on_exhausted || "pause" },
    h("option", { value: "pause" }, "pause the subscription"),
    h("option", { value: "park" }, "park the event and go on"),
  );
  errors.headers = h("div", { class: "form-error", id: "sub-headers-error" });
  errors.start = h("div", { class: "form-error", id: "sub-start-error" });
  errors.secret = h("div", { class: "form-error", id: "sub-secret-error" });
  errors.event_types = h("div", { class: "form-error", id: "sub-event-types-error" });
  typesInput.id = "sub-event-types";
  typesInput.setAttribute("aria-describedby", "sub-event-types-hint sub-event-types-error");
  controls.event_types = typesInput;
  secretInput.id = "sub-secret";
  secretInput.setAttribute("aria-describedby", "sub-secret-hint sub-secret-error");
  controls.secret = secretInput;
  controls.headers = headerRows;
  const formError = h("div", { id: "form-error" });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary" },
    editing ? "Save changes" : "Create subscription",
  );

  // A header value may be a credential: masked, as on the subscription's page, until asked for.
  let valueIds = 0;
  function secretField(label, value) {
    // A text input drawn as dots, not a password one: browsers would offer to save it as a
    // login, or fill a saved password in.
    const input = h("input", {
      class: "input input-masked",
      type: "text",
      id: `sub-header-value-${++valueIds}`,
      value,
      autocomplete: "off",
      spellcheck: "false",
      dataset: { header: "value" },
    });
    const reveal = h(
      "button",
      {
        type: "button",
        class: "btn btn-small btn-ghost",
        "aria-controls": input.id,
        "aria-pressed": "false",
        "aria-label": "Reveal this header",
      },
      "Show",
    );
    reveal.addEventListener("click", () => {
      const shown = input.classList.toggle("input-masked") === false;
      reveal.textContent = shown ? "Hide" : "Show";
      reveal.setAttribute("aria-pressed", String(shown));
    });
    return h(
      "div",
      { class: "field" },
      h("label", { class: "label", for: input.id }, label),
      h("div", { class: "row secret-row" }, input, reveal),
    );
  }

  function addHeader(name = "", value = "") {
    const row = h(
      "div",
      { class: "row header-row" },
      h(
        "label",
        { class: "field" },
        h("span", { class: "label" }, "Header name"),
        h("input", {
          class: "input",
          value: name,
          autocomplete: "off",
          spellcheck: "false",
          dataset: { header: "name" },
        }),
      ),
      secretField("Value", value),
    );
    row.append(
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small btn-ghost",
          "aria-label": "Remove this header",
          onclick: () => row.remove(),
        },
        "Remove",
      ),
    );
    headerRows.append(row);
    return row;
  }
  for (const [n, v] of Object.entries(c?.headers || {})) addHeader(n, v);

  function showTypes() {
    fill(
      typeList,
      types.length
        ? types.map((type, index) =>
            h(
              "li",
              { class: "chip type-chip", dataset: { type } },
              h("span", { class: "type-name", title: type }, h("bdi", {}, type)),
              h(
                "button",
                {
                  type: "button",
                  class: "chip-remove",
                  "aria-label": `Remove ${type}`,
                  onclick: () => {
                    types.splice(index, 1);
                    showTypes();
                    typesInput.focus();
                  },
                },
                "×",
              ),
            ),
          )
        : h("li", { class: "muted all-types" }, "All types"),
    );
  }
  function addType(type) {
    if (type && !types.includes(type)) types.push(type);
    showTypes();
  }
  function addTyped() {
    addType(typesInput.value.trim());
    typesInput.value = "";
  }
  typesInput.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !typesInput.value.trim()) return;
    event.preventDefault(); // Enter adds the type; on an empty field it saves the form
    addTyped();
  });
  showTypes();

  const startChoice = (value, label, checked) =>
    h("label", { class: "choice" }, h("input", { type: "radio", name: "start", value, checked }), label);

  // Known event types of the chosen stream, as one-click choices.
  const loadTypes = debounce(async () => {
    const stream = streamInput.value.trim();
    fill(typeChoices);
    if (!STREAM_NAME.test(stream)) return;
    try {
      const { streams } = await api("/v1/streams", { query: { prefix: stream, limit: 20 }, signal });
      fill(
        streamOptions,
        streams.map((s) => h("option", { value: s.name })),
      );
      if (!streams.some((s) => s.name === stream)) return;
      const info = await api(`/v1/streams/${seg(stream)}`, { signal });
      const known = Object.keys(info.event_types).sort();
      const choice = (type) =>
        h(
          "button",
          {
            type: "button",
            class: "chip chip-button",
            onclick: () => addType(type),
          },
          "+ ",
          h("bdi", {}, type),
        );
      // The first TYPES_SHOWN, the rest on request: thousands drew a page 8,000 px tall.
      const more = h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          id: "sub-types-more",
          onclick: () => {
            const rest = known.slice(TYPES_SHOWN).map(choice);
            more.replaceWith(...rest);
            rest[0].focus();
          },
        },
        `Show all ${fmtNumber(known.length)} types`,
      );
      fill(typeChoices, known.slice(0, TYPES_SHOWN).map(choice), known.length > TYPES_SHOWN ? more : null);
    } catch (error) {
      if (error.name !== "AbortError") fill(typeChoices, h("span", { class: "form-error" }, error.message));
    }
  }, 250);
  streamInput.addEventListener("input", loadTypes);

  const form = h(
    "form",
    { id: "subscription-form", novalidate: true },
    formError,
    h(
      "div",
      { class: "grid-2 form-grid" },
      h(
        "div",
        { class: "stack" },
        h(
          "section",
          { class: "card" },
          h("div", { class: "card-head" }, h("h2", {}, "Where from, where to")),
          h(
            "div",
            { class: "card-body" },
            editing ? null : field("name", "Name", nameInput, "1-100 characters of A-Z a-z 0-9 _ - ."),
            field(
              "stream",
              "Stream",
              streamInput,
              editing ? "The stream cannot change." : "An existing stream, or one that does not exist yet.",
            ),
            streamOptions,
            field("url", "Webhook URL", urlInput, "http:// or https://. Any 2xx answer counts as delivered."),
            h(
              "fieldset",
              {},
              h("legend", {}, "Headers sent with every delivery"),
              headerRows,
              errors.headers,
              h(
                "button",
                {
                  type: "button",
                  class: "btn btn-small",
                  onclick: () => addHeader().querySelector("input").focus(),
                },
                "Add header",
              ),
            ),
            editing
              ? null
              : h(
                  "fieldset",
                  { id: "sub-start" },
                  h("legend", {}, "Start"),
                  startChoice("beginning", "from the first event", true),
                  startChoice("end", "with new events only", false),
                  h(
                    "span",
                    { class: "choice" },
                    startChoice("position", "after position", false),
                    startPosition,
                  ),
                  errors.start,
                ),
            h(
              "div",
              { class: "field" },
              h("label", { class: "label", for: "sub-event-types" }, "Event types"),
              typeList,
              h(
                "div",
                { class: "row" },
                typesInput,
                h("button", { type: "button", class: "btn btn-small", onclick: addTyped }, "Add type"),
              ),
              h(
                "span",
                { class: "hint", id: "sub-event-types-hint" },
                "One at a time (Enter adds it); none delivers every type. Others are passed over.",
              ),
              errors.event_types,
            ),
            typeChoices,
          ),
        ),
      ),
      h(
        "div",
        { class: "stack" },
        h(
          "section",
          { class: "card" },
          h("div", { class: "card-head" }, h("h2", {}, "Delivery")),
          h(
            "div",
            { class: "card-body" },
            h(
              "div",
              { class: "field" },
              h("label", { class: "label", for: "sub-secret" }, "Signing secret"),
              h(
                "div",
                { class: "row" },
                secretInput,
                h(
                  "button",
                  {
                    type: "button",
                    class: "btn btn-small",
                    onclick: () => {
                      secretInput.value = newSecret();
                    },
                  },
                  "Generate",
                ),
              ),
              h(
                "span",
                { class: "hint", id: "sub-secret-hint" },
                "Standard Webhooks: whsec_ + base64. It is never shown again after saving.",
              ),
              editing && c?.secret_set
                ? h("label", { class: "choice" }, removeSecret, "Remove the secret")
                : null,
              errors.secret,
            ),
            h(
              "div",
              { class: "row" },
              field("batch_size", "Batch size", batch),
              field("timeout", "Timeout (s)", timeout),
            ),
            h(
              "div",
              { class: "row" },
              field("max_attempts", "Attempts per event", attempts, "0 = forever"),
              field("on_exhausted", "When exhausted", onExhausted),
            ),
            h(
              "div",
              { class: "row" },
              field("backoff_initial", "Backoff from (s)", backoffInitial),
              field("backoff_max", "Backoff up to (s)", backoffMax),
            ),
          ),
        ),
        c?.created_by === "original"
          ? h(
              "p",
              { class: "hint", id: "sub-original-hint" },
              "Made through the original API. Saving here makes it a v1 subscription: a 410 Gone",
              " pauses it, deliveries carry each event's own content type, and its own headers no",
              " longer stand in for the ones Eventor sends (User-Agent, Content-Type, X-Event-*).",
            )
          : null,
        h(
          "div",
          { class: "actions" },
          submit,
          h(
            "a",
            { class: "btn", href: editing ? subscriptionHref(editing) : "/dashboard/subscriptions" },
            "Cancel",
          ),
        ),
      ),
    ),
  );

  function setError(key, message) {
    const slot = errors[key];
    if (slot) slot.textContent = message || "";
    const control = controls[key];
    if (control && control.tagName !== "DIV") {
      if (message) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
  }

  function collect() {
    for (const key of Object.keys(errors)) setError(key, "");
    const problems = [];
    const fail = (key, message) => problems.push([key, message]);
    const name = editing || nameInput.value.trim();
    if (!editing && !SUBSCRIPTION_NAME.test(name)) fail("name", "Use 1-100 characters of A-Z a-z 0-9 _ - .");
    else if (!editing && isDotSegment(name))
      fail(
        "name",
        `“${name}” is a valid name, but browsers drop it from addresses, so the dashboard could not ` +
          "show or change it: create it through the API or the Python client, or pick another name.",
      );
    const stream = streamInput.value.trim();
    if (!STREAM_NAME.test(stream))
      fail("stream", "Use 1-200 characters of A-Z a-z 0-9 _ - . : (not starting with . or -).");
    const url = urlInput.value.trim();
    if (!/^https?:\/\/[^\s/]+/i.test(url)) fail("url", "Give an http:// or https:// address.");
    const headers = {};
    for (const row of headerRows.querySelectorAll(".header-row")) {
      const n = row.querySelector("[data-header=name]").value.trim();
      const v = row.querySelector("[data-header=value]").value;
      if (!n && !v) continue;
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(n)) fail("headers", `“${n}” is not a valid header name.`);
      headers[n] = v;
    }
    const body = { stream, url, headers };
    if (!editing) {
      const start = form.querySelector("input[name=start]:checked").value;
      if (start === "position") {
        const typed = startPosition.value.trim();
        if (!/^\d+$/.test(typed)) fail("start", "The start position is a whole number, 0 or more.");
        else if (BigInt(typed) > MAX_POSITION)
          fail("start", `Too large: a position is at most ${MAX_POSITION} (2^62).`);
        else body.start = BigInt(typed); // as typed: Number() would round it past 2^53
      } else body.start = start;
    }
    if (typesInput.value.trim()) addTyped(); // typed but not added: meant all the same
    body.event_types = types.length ? [...types] : null;
    if (removeSecret.checked) body.secret = null;
    else if (secretInput.value.trim()) body.secret = secretInput.value.trim();
    else if (!editing) body.secret = null;
    const num = (key, input) => {
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value)) fail(key, "A number, please.");
      return value;
    };
    body.batch_size = num("batch_size", batch);
    body.timeout = num("timeout", timeout);
    body.max_attempts = num("max_attempts", attempts);
    body.backoff = { initial: num("backoff_initial", backoffInitial), max: num("backoff_max", backoffMax) };
    body.on_exhausted = onExhausted.value;
    return { name, body, problems };
  }

  /** True unless the subscription was changed elsewhere since the form was filled from it and
   * the user, asked, keeps it: a PUT replaces the whole configuration, theirs with it. */
  async function stillAsOpened() {
    // Listed by its stream (which cannot change), not read by name: deleted meanwhile, it is
    // missing here, not a 404 in the console; the PUT then says so (412).
    const query = { stream: current.config.stream };
    const { subscriptions } = await api("/v1/subscriptions", { query, signal });
    const now = subscriptions.find((s) => s.name === editing);
    // Its configuration, not `updated`: a pause (by hand, or after failures) moves that too,
    // and a save leaves the status as it is.
    if (!now || JSON.stringify(now.config) === JSON.stringify(current.config)) return true;
    return confirmDialog({
      title: "Changed since you opened it",
      body: [
        h(
          "p",
          { id: "changed-elsewhere" },
          `The configuration of “${editing}” was changed elsewhere ${timeAgo(now.updated)}, after this form was filled. `,
          "Saving replaces its whole configuration with this form's, undoing that change.",
        ),
        h("p", {}, "Save all the same? (Cancel, then reload the page to start from the change.)"),
      ],
      confirm: "Save all the same",
      danger: true,
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(formError);
    const { name, body, problems } = collect();
    if (problems.length) {
      for (const [key, message] of problems) setError(key, message);
      fill(
        formError,
        errorBox(
          new Error(`${problems.length === 1 ? "One field needs" : `${problems.length} fields need`} a fix.`),
          "Check the form",
        ),
      );
      const first = controls[problems[0][0]];
      (first?.tagName === "DIV" ? first.querySelector("input") : first)?.focus();
      return;
    }
    submit.disabled = true;
    try {
      if (editing && !(await stillAsOpened())) return;
      if (typeof body.start === "bigint") {
        const head = await headOf(body.stream, signal);
        const question = {
          stream: body.stream,
          position: body.start,
          head,
          action: "Create the subscription there",
          confirm: "Skip them and create",
        };
        if (body.start > head && !(await confirmBeyondHead(question))) {
          startPosition.focus();
          return;
        }
      }
      // A bare PUT creates or updates. Creating never overwrites one that exists (a name typo
      // cannot clobber it), and editing never brings back one deleted meanwhile (it would
      // start over and deliver the whole stream again).
      const headers = editing ? { "If-Match": "*" } : { "If-None-Match": "*" };
      await api(`/v1/subscriptions/${seg(name)}`, { method: "PUT", body: toJson(body), headers, signal });
      navigate(subscriptionHref(name), { replace: true }); // Back does not return to the form
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 412 && !editing) {
        setError(
          "name",
          "A subscription with this name exists already: pick another name, or edit that one.",
        );
        nameInput.focus();
        return;
      }
      if (error.status === 412) {
        fill(
          formError,
          errorBox(error, "This subscription was deleted meanwhile: nothing was saved"),
        );
        formError.querySelector("[role=alert]")?.focus();
        return;
      }
      fill(formError, errorBox(error, "The server refused the subscription"));
      const key = error.status === 400 ? fieldOf(error.message) : null;
      if (key && errors[key]) {
        setError(key, error.message);
        const control = controls[key];
        (control?.tagName === "DIV" ? control.querySelector("input") : control)?.focus();
      } else formError.querySelector("[role=alert]")?.focus();
    } finally {
      submit.disabled = false;
    }
  });

  fill(main, head, form);
  if (streamInput.value) loadTypes();
  (editing ? urlInput : nameInput).focus({ preventScroll: true });
}
