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

  /** Reads one `'…'` or `"…"` literal, decoding its escapes. */
  string(): string {
    const quote = this.peek();
    if (this.text.startsWith(quote.repeat(3), this.pos)) this.fail("triple-quoted string");
    this.pos++;
    let out = "";
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined || c === "\n") this.fail("unterminated string");
      if (c === quote) return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      out += this.escape();
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
      const hex = this.text.slice(this.pos, this.pos + hexLength);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== hexLength) this.fail(`bad \\${c} escape`);
      this.pos += hexLength;
      return String.fromCodePoint(parseInt(hex, 16));
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
    const indent = /[ \t]*$/.exec(text.slice(text.lastIndexOf("\n", cur.pos - 1) + 1, cur.pos))![0];
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
  let out = quote;
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\" || ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + quote;
}
