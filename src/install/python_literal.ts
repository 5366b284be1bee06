/**
 * The `build_time_vars = {...}` literal of `_sysconfigdata_*.py`: a dict of string keys
 * to strings or numbers, as written by pprint (adjacent string literals for long
 * values), read with the positions of each value so that only changed values are
 * replaced; and Python string literals written like `repr()`.
 *
 * @module
 */

/** A value of the dict and where its source text is. */
export interface DictItem {
  key: string;
  /** Whitespace before the key on its line, to indent an added entry alike. */
  indent: string;
  value: string | number;
  start: number;
  end: number;
}

/** The parsed dict: its items and where its body starts. */
export interface ParsedDict {
  items: DictItem[];
  /** Index just after `{`. */
  open: number;
}

/** The sysconfig data is not the literal this parser reads. */
export class LiteralSyntaxError extends SyntaxError {}

const SIMPLE_ESCAPES: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\n": "",
};

/** The value of hex digit `c` (a char code), or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Finds the next quote, backslash or newline of a literal. Each of the three is looked
 * up again only once the cursor has passed its last hit, so a value full of escapes
 * is still scanned in linear time.
 */
class Specials {
  readonly #next: number[];
  constructor(readonly text: string, readonly chars: string[]) {
    this.#next = chars.map(() => -2);
  }

  /** The first of the characters at or after `from`, or -1. */
  at(from: number): number {
    let best = -1;
    for (let i = 0; i < this.chars.length; i++) {
      let at = this.#next[i];
      if (at !== -1 && at < from) at = this.#next[i] = this.text.indexOf(this.chars[i], from);
      if (at !== -1 && (best === -1 || at < best)) best = at;
    }
    return best;
  }
}

class Cursor {
  pos: number;
  constructor(readonly text: string, pos: number) {
    this.pos = pos;
  }

  peek(): string {
    return this.text[this.pos] ?? "";
  }

  fail(what: string): never {
    const line = this.text.slice(0, this.pos).split("\n").length;
    throw new LiteralSyntaxError(`${what} at line ${line}`);
  }

  /** Skips whitespace, line continuations and comments. */
  skipBlank(): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f") this.pos++;
      else if (c === "\\" && this.text[this.pos + 1] === "\n") this.pos += 2;
      else if (c === "#") {
        const nl = this.text.indexOf("\n", this.pos);
        this.pos = nl === -1 ? this.text.length : nl;
      } else return;
    }
  }

  /**
   * Reads one `'…'` or `"…"` literal, decoding its escapes. Runs of plain characters
   * are taken as slices, found with `indexOf`: linear time, and memory of the order of
   * the value (building it a character at a time cost ~40× the file size).
   */
  string(): string {
    const quote = this.peek();
    if (this.text.startsWith(quote.repeat(3), this.pos)) this.fail("triple-quoted string");
    this.pos++;
    const parts: string[] = [];
    const text = this.text;
    const specials = new Specials(text, [quote, "\\", "\n"]);
    const run: string[] = [];
    for (;;) {
      const end = specials.at(this.pos);
      if (end === -1) {
        this.pos = text.length;
        this.fail("unterminated string");
      }
      if (end > this.pos) {
        if (run.length) {
          parts.push(run.join(""));
          run.length = 0;
        }
        parts.push(text.slice(this.pos, end));
      }
      const c = text[end];
      this.pos = end + 1;
      if (c === "\n") this.fail("unterminated string");
      if (c === quote) {
        if (run.length) parts.push(run.join(""));
        return parts.length === 1 ? parts[0] : parts.join("");
      }
      // Escapes gather in a short run joined every few thousand, so a value made of
      // escapes does not hold one array slot per character.
      run.push(this.escape());
      if (run.length >= 4096) {
        parts.push(run.join(""));
        run.length = 0;
      }
    }
  }

  escape(): string {
    const c = this.text[this.pos++];
    if (c === undefined) this.fail("unterminated string");
    if (Object.hasOwn(SIMPLE_ESCAPES, c)) return SIMPLE_ESCAPES[c];
    if (c === "\r" && this.peek() === "\n") {
      this.pos++;
      return "";
    }
    const hexLength = c === "x" ? 2 : c === "u" ? 4 : c === "U" ? 8 : 0;
    if (hexLength) {
      let code = 0;
      for (let i = 0; i < hexLength; i++) {
        const digit = hexDigit(this.text.charCodeAt(this.pos + i));
        if (digit < 0) this.fail(`bad \\${c} escape`);
        code = code * 16 + digit;
      }
      if (code > 0x10ffff) this.fail(`bad \\${c} escape`);
      this.pos += hexLength;
      return String.fromCodePoint(code);
    }
    if (/[0-7]/.test(c)) {
      const oct = /^[0-7]{0,2}/.exec(this.text.slice(this.pos, this.pos + 2))![0];
      this.pos += oct.length;
      return String.fromCodePoint(parseInt(c + oct, 8));
    }
    if (c === "N") this.fail("unsupported \\N{...} escape");
    // Python keeps unknown escapes as written.
    return `\\${c}`;
  }

  /** Reads adjacent string literals (`'a' 'b'` is `'ab'`), as pprint splits long values. */
  strings(): string {
    let out = this.string();
    for (;;) {
      const save = this.pos;
      this.skipBlank();
      const c = this.peek();
      if (c !== "'" && c !== '"') {
        this.pos = save;
        return out;
      }
      out += this.string();
    }
  }

  number(): number {
    const m = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 64));
    if (!m) this.fail(`unexpected ${JSON.stringify(this.peek() || "end of file")}`);
    this.pos += m[0].length;
    return Number(m[0]);
  }
}

/** Parses the `build_time_vars = {...}` dict of a `_sysconfigdata_*.py` file. */
export function parseBuildTimeVars(text: string): ParsedDict {
  const head = /^build_time_vars\s*=\s*\{/m.exec(text);
  if (!head) throw new LiteralSyntaxError("no `build_time_vars = {` assignment");
  const open = head.index + head[0].length;
  const cur = new Cursor(text, open);
  const items: DictItem[] = [];
  for (;;) {
    cur.skipBlank();
    if (cur.peek() === "}") return { items, open };
    if (cur.peek() !== "'" && cur.peek() !== '"') cur.fail("expected a string key");
    // Only the last few characters: looking back to the line start on a one-line dict
    // would be quadratic.
    const before = text.slice(Math.max(0, cur.pos - 256), cur.pos);
    const indent = /[ \t]*$/.exec(before.slice(before.lastIndexOf("\n") + 1))![0];
    const key = cur.strings();
    cur.skipBlank();
    if (cur.peek() !== ":") cur.fail("expected `:`");
    cur.pos++;
    cur.skipBlank();
    const start = cur.pos;
    const value = cur.peek() === "'" || cur.peek() === '"' ? cur.strings() : cur.number();
    items.push({ key, indent: indent || " ", value, start, end: cur.pos });
    cur.skipBlank();
    if (cur.peek() === ",") cur.pos++;
    else if (cur.peek() !== "}") cur.fail("expected `,` or `}`");
  }
}

/**
 * Writes `value` as a Python string literal, quoted like `repr()` does. Non-ASCII text
 * stays as is: Python source files are UTF-8.
 *
 * @example
 * ```ts
 * pythonString("it's"); // "\"it's\""
 * ```
 */
export function pythonString(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  // One regular-expression pass: building the literal a character at a time took
  // memory of many times the value's size.
  const special = quote === "'" ? SPECIAL_SINGLE : SPECIAL_DOUBLE;
  return quote + value.replace(special, escapeChar) + quote;
}

// With the `u` flag a surrogate range matches only unpaired surrogates, as `repr()` escapes.
// deno-lint-ignore no-control-regex
const SPECIAL_SINGLE = /[\\'\x00-\x1f\x7f]|[\ud800-\udfff]/gu;
// deno-lint-ignore no-control-regex
const SPECIAL_DOUBLE = /[\\"\x00-\x1f\x7f]|[\ud800-\udfff]/gu;

function escapeChar(ch: string): string {
  if (ch === "\\" || ch === "'" || ch === '"') return `\\${ch}`;
  if (ch === "\n") return "\\n";
  if (ch === "\r") return "\\r";
  if (ch === "\t") return "\\t";
  const code = ch.charCodeAt(0);
  if (code >= 0xd800) return `\\u${code.toString(16).padStart(4, "0")}`;
  return `\\x${code.toString(16).padStart(2, "0")}`;
}
