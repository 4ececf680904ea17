// A strict JSON reader for files users write (machine configs): every error is one sentence
// with the line and column, nesting is bounded, a key given twice is an error, and a key such
// as "__proto__" becomes an own property (as JSON.parse makes it) that validation can refuse.

import { UserError } from './errors.js';

/** Deeper nesting than any config needs; it bounds the recursion of everything downstream. */
export const MAX_JSON_DEPTH = 32;

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4_RE = /^[0-9a-fA-F]{4}$/;

class JsonReader {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly where: string,
  ) {}

  read(): unknown {
    this.skipSpace();
    if (this.pos >= this.text.length) throw new UserError(`${this.where}: expected a JSON object, got an empty file`);
    const value = this.value(0, []);
    this.skipSpace();
    if (this.pos < this.text.length) this.fail(`expected the end of the file after the JSON value, got ${this.got()}`);
    return value;
  }

  private fail(what: string, at = this.pos): never {
    let line = 1;
    let start = 0;
    for (let i = this.text.indexOf('\n'); i !== -1 && i < at; i = this.text.indexOf('\n', i + 1)) {
      line++;
      start = i + 1;
    }
    throw new UserError(`${this.where}: line ${line}, column ${at - start + 1}: ${what}`);
  }

  private got(): string {
    if (this.pos >= this.text.length) return 'the end of the file';
    const word = /^[A-Za-z0-9_$+.-]{1,16}/.exec(this.text.slice(this.pos, this.pos + 16));
    return JSON.stringify(word === null ? this.text[this.pos] : word[0]);
  }

  private skipSpace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  private value(depth: number, path: string[]): unknown {
    const t = this.text;
    const c = t[this.pos];
    if (c === '{' || c === '[') {
      if (depth >= MAX_JSON_DEPTH) this.fail(`expected at most ${MAX_JSON_DEPTH} levels of nesting, got more`);
      return c === '{' ? this.object(depth + 1, path) : this.array(depth + 1, path);
    }
    if (c === '"') return this.string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (t.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    NUMBER_RE.lastIndex = this.pos;
    const m = NUMBER_RE.exec(t);
    if (m !== null) {
      this.pos += m[0].length;
      return Number(m[0]);
    }
    return this.fail(`expected a JSON value, got ${this.got()}`);
  }

  private object(depth: number, path: string[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.fail(`expected a field name in double quotes, got ${this.got()}`);
      const keyAt = this.pos;
      const key = this.string();
      const field = [...path, key].join('.');
      if (Object.hasOwn(out, key)) this.fail(`field ${JSON.stringify(field)} appears twice`, keyAt);
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.fail(`expected ":" after field ${JSON.stringify(field)}, got ${this.got()}`);
      this.pos++;
      this.skipSpace();
      Object.defineProperty(out, key, { value: this.value(depth, [...path, key]), enumerable: true, writable: true, configurable: true });
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === '}') return out;
      if (c !== ',') {
        this.pos--;
        this.fail(`expected "," or "}" after field ${JSON.stringify(field)}, got ${this.got()}`);
      }
    }
  }

  private array(depth: number, path: string[]): unknown[] {
    const out: unknown[] = [];
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      out.push(this.value(depth, [...path, String(out.length)]));
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ']') return out;
      if (c !== ',') {
        this.pos--;
        this.fail(`expected "," or "]" in an array, got ${this.got()}`);
      }
    }
  }

  private string(): string {
    const t = this.text;
    const start = this.pos;
    let i = start + 1;
    for (;;) {
      if (i >= t.length) this.fail('expected the closing quote of a string, got the end of the file', start);
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) this.fail(`expected a character in a string, got the control character ${JSON.stringify(t[i])}`, i);
      if (c === 0x5c) {
        const e = t[i + 1];
        if (e === 'u') {
          if (!HEX4_RE.test(t.slice(i + 2, i + 6))) this.fail(`expected four hex digits after "\\u", got ${JSON.stringify(t.slice(i + 2, i + 6))}`, i);
          i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail(`expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), got ${JSON.stringify(`\\${e ?? ''}`)}`, i);
        i += 2;
        continue;
      }
      i++;
    }
    this.pos = i + 1;
    return JSON.parse(t.slice(start, i + 1)) as string;
  }
}

/** Parses JSON text; a UserError `WHERE: line L, column C: ...` when it is not JSON. */
export function parseJsonText(text: string, where: string): unknown {
  return new JsonReader(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, where).read();
}
