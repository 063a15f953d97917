// JSON with its numbers as written. JSON.parse turns 9007199254740993 into ...992 and 10.10 into
// 10.1; event data is shown and copied as the API sent it, so a number a JS number would change
// is kept as its literal (a JsonNumber) and printed back verbatim. So are its members: a JS object
// puts integer-like keys first ({"b": 1, "2": 0} became {"2": 0, "b": 1}) and keeps only the last
// of duplicate keys, so an object holding such a member is printed from its source text.

/** A number literal a JS number cannot hold as written (big integers, 10.10, 1e400, -0). */
export class JsonNumber {
  constructor(text) {
    this.text = text;
  }

  toString() {
    return this.text;
  }

  // formatJson lets JSON.stringify do the work and puts the literals back in place of these.
  toJSON() {
    return `${MARK}${this.text}${MARK}`;
  }
}

// Made of characters JSON.stringify leaves as they are, and unguessable: no string in the data
// can pass for one.
const MARK = `\uE000${crypto.getRandomValues(new Uint32Array(2)).join("")}\uE000`;
const MARKED = new RegExp(`"${MARK}([^"]*)${MARK}"`, "g");

// A number that might not survive Number(): 16+ digits, a fraction ending in 0, an exponent,
// -0, or 0.000000…. Anything else (≤ 15 significant digits) prints back exactly as written.
// Matching inside strings too only costs the slower exact parse.
const MAYBE_INEXACT = /[\d.]{16}|\.\d*0(?=[\s,\]}]|$)|\d[eE][+-]?\d+(?=[\s,\]}]|$)|-0(?![.\d])|\.0{6}/;
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const INDEX = /^(?:0|[1-9]\d*)$/; // a key a JS object puts first
const INDEX_KEY = /"(?:0|[1-9]\d*)"\s*:/;
const STRING = /"(?:[^"\\]|\\.)*"(\s*:)?/g; // every string in turn, and whether it is a key

/** An object or array (with those inside it) whose members a JS value would reorder or lose:
 * its source text, printed by formatJson in its place. */
const SOURCE = new WeakMap();

/** Whether `value`, parsed from `text`, lost or reordered members (as far as a quick look can
 * tell: a key that may be integer-like, or fewer members than the text has keys). */
function reordered(text, value) {
  if (INDEX_KEY.test(text)) return true;
  let keys = 0;
  for (const [, colon] of text.matchAll(STRING)) if (colon !== undefined) keys += 1;
  const members = (v) => {
    if (v === null || typeof v !== "object") return 0;
    let n = 0;
    if (Array.isArray(v)) for (const item of v) n += members(item);
    else for (const key in v) n += 1 + members(v[key]);
    return n;
  };
  return keys !== members(value);
}

/** Parse valid JSON (JSON.parse has checked it) keeping every number literal. */
function parseExact(text) {
  let i = 0;
  let lost = false; // the container being read holds a member a JS object would move or drop
  const kept = (container, start, outer) => {
    if (lost) SOURCE.set(container, text.slice(start, i));
    lost ||= outer;
    return container;
  };
  const space = () => {
    for (let c = text.charCodeAt(i); c === 32 || c === 10 || c === 13 || c === 9; c = text.charCodeAt(++i));
  };
  const string = () => {
    let end = i;
    for (;;) {
      end = text.indexOf('"', end + 1);
      let slashes = 0;
      while (text.charCodeAt(end - 1 - slashes) === 92) slashes += 1;
      if (slashes % 2 === 0) break;
    }
    const raw = text.slice(i, end + 1);
    i = end + 1;
    return raw.includes("\\") ? JSON.parse(raw) : raw.slice(1, -1);
  };
  const value = () => {
    space();
    const c = text[i];
    if (c === "{") {
      const start = i;
      i += 1;
      const object = {};
      space();
      if (text[i] === "}") {
        i += 1;
        return object;
      }
      const outer = lost;
      lost = false;
      for (;;) {
        space();
        const key = string();
        if (INDEX.test(key) || Object.hasOwn(object, key)) lost = true;
        space();
        i += 1; // the colon
        // Not `object[key] =`: for "__proto__" that would set the prototype.
        Object.defineProperty(object, key, {
          value: value(),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        space();
        if (text[i++] === "}") return kept(object, start, outer);
      }
    }
    if (c === "[") {
      const start = i;
      i += 1;
      const array = [];
      space();
      if (text[i] === "]") {
        i += 1;
        return array;
      }
      const outer = lost;
      lost = false;
      for (;;) {
        array.push(value());
        space();
        if (text[i++] === "]") return kept(array, start, outer);
      }
    }
    if (c === '"') return string();
    if (c === "t" || c === "n") {
      i += 4;
      return c === "t" ? true : null;
    }
    if (c === "f") {
      i += 5;
      return false;
    }
    NUMBER.lastIndex = i;
    const [literal] = NUMBER.exec(text);
    i += literal.length;
    const number = Number(literal);
    return String(number) === literal ? number : new JsonNumber(literal);
  };
  return value();
}

/**
 * JSON.parse(text), except that a number a JS number would change comes back as a JsonNumber,
 * and formatJson prints an object in its members' order, duplicates included.
 * Throws SyntaxError on invalid JSON, as JSON.parse does.
 */
export function parseJson(text) {
  const value = JSON.parse(text);
  try {
    if (!MAYBE_INEXACT.test(text) && !reordered(text, value)) return value;
    return parseExact(text);
  } catch {
    return value; // nested too deep for the recursion: shown as JSON.parse reads it
  }
}

const TOKEN = /"(?:[^"\\]|\\.)*"|[{}[\],:]|[^\s{}[\],:"]+/g;

/** JSON text laid out as JSON.stringify(…, null, 2) lays out a value, token by token. */
function indent(text) {
  let out = "";
  let depth = 0;
  let opened = false; // the token before opened an object or array: a line break, unless empty
  const br = () => `\n${"  ".repeat(depth)}`;
  for (const [token] of text.matchAll(TOKEN)) {
    const close = token === "}" || token === "]";
    if (close) depth -= 1;
    if (opened !== close) out += br();
    opened = token === "{" || token === "[";
    if (opened) depth += 1;
    out += token === "," ? `,${br()}` : token === ":" ? ": " : token;
  }
  return out;
}

/** JSON.stringify(value, null, 2), with each JsonNumber as its literal and each object as read. */
export function formatJson(value) {
  const source = SOURCE.get(value);
  if (source !== undefined) return indent(source);
  const text = JSON.stringify(value, null, 2) ?? "null";
  return text.includes(MARK) ? text.replace(MARKED, "$1") : text;
}
