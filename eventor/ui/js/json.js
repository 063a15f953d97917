// JSON with its numbers as written. JSON.parse turns 9007199254740993 into ...992 and 10.10 into
// 10.1; event data is shown and copied as the API sent it, so a number a JS number would change
// is kept as its literal (a JsonNumber) and printed back verbatim.

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

/** Parse valid JSON (JSON.parse has checked it) keeping every number literal. */
function parseExact(text) {
  let i = 0;
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
      i += 1;
      const object = {};
      space();
      if (text[i] === "}") {
        i += 1;
        return object;
      }
      for (;;) {
        space();
        const key = string();
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
        if (text[i++] === "}") return object;
      }
    }
    if (c === "[") {
      i += 1;
      const array = [];
      space();
      if (text[i] === "]") {
        i += 1;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        if (text[i++] === "]") return array;
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
 * JSON.parse(text), except that a number a JS number would change comes back as a JsonNumber.
 * Throws SyntaxError on invalid JSON, as JSON.parse does.
 */
export function parseJson(text) {
  const value = JSON.parse(text);
  if (!MAYBE_INEXACT.test(text)) return value;
  try {
    return parseExact(text);
  } catch {
    return value; // nested too deep for the recursion: shown as JSON.parse reads it
  }
}

/** JSON.stringify(value, null, 2), with each JsonNumber as its literal. */
export function formatJson(value) {
  const text = JSON.stringify(value, null, 2) ?? "null";
  return text.includes(MARK) ? text.replace(MARKED, "$1") : text;
}
