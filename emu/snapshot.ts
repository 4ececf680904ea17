// Shape-directed snapshots of an object graph (machine checkpoints, traces/checkpoint.ts).
//
// snapshotGraph walks a graph from its root: own enumerable properties of objects (class
// instances by their class's name), arrays, Maps and Sets, numbers (NaN, infinities and -0
// tagged), strings, booleans, null, undefined and bigints; typed arrays and ArrayBuffers go to
// a binary section as raw bytes. An object met again (a back-pointer, an alias) is written
// once: every object, array, Map, Set, typed array and function gets a number in the order
// the walk first meets it, and restoreGraph meets them in the same order. Functions are not
// data: a function is written as its source text, and restoreGraph takes the function of the
// fresh graph at the same place, or one of the same source from a catalog the caller builds
// from its freshly constructed objects (closures over the fresh kernel). A generator, a
// promise or anything else with hidden state cannot be captured: the walk throws
// SnapshotError naming where it met it, rather than leave it out.
//
// restoreGraph overlays saved values onto a freshly constructed graph of the same config:
// objects of the same class are filled in place (so what the walk skips stays the fresh
// object's), typed arrays of the same type and length are copied into, anything else (a
// counter table that grew, an object the fresh graph does not have) is made anew, class
// instances from the prototype of a class the fresh graph or the caller's list names.
//
// What the walk skips: Machine's running programs (generators; a checkpoint is taken where
// none is inside kernel code, and its driver rebuilds them) and its config (the input: the
// fresh machine is built from it). PhysMem is written by its own snapshot()/restore().

import { Machine } from './machine.js';
import { PhysMem } from './physmem.js';

/** A value the walk cannot capture, or an image that does not fit the graph it is restored onto. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** A captured graph: a JSON-able tree and the raw bytes it refers to by index. */
export interface GraphImage {
  tree: unknown;
  blobs: Uint8Array[];
}

type TypedArray =
  | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array;

const typedArrays: Record<string, new (n: number) => TypedArray> = {
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array,
};

/** Properties of a class the walk leaves alone (restoreGraph keeps the fresh object's). */
const skipped = new Map<object, ReadonlySet<string>>([[Machine.prototype, new Set(['tasks', 'config'])]]);

function skips(o: object): ReadonlySet<string> | undefined {
  return skipped.get(Object.getPrototypeOf(o) as object);
}

function className(o: object): string {
  const proto = Object.getPrototypeOf(o) as { constructor?: { name?: string } } | null;
  if (proto === null || proto === Object.prototype) return '';
  const name = proto.constructor?.name;
  if (typeof name !== 'string' || name === '') throw new SnapshotError('an instance of an unnamed class');
  return name;
}

function hidden(v: object): string | undefined {
  const tag = Object.prototype.toString.call(v);
  if (tag === '[object Generator]' || tag === '[object AsyncGenerator]' || tag === '[object Promise]' || v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) return tag;
  if (v instanceof DataView) return 'a DataView';
  return undefined;
}

/** Captures the graph under `root` (see the top of this file). */
export function snapshotGraph(root: object): GraphImage {
  const seen = new Map<unknown, number>();
  const blobs: Uint8Array[] = [];
  const blob = (bytes: Uint8Array) => {
    blobs.push(bytes);
    return blobs.length - 1;
  };
  const walk = (v: unknown, path: string): unknown => {
    switch (typeof v) {
      case 'number':
        if (Number.isFinite(v) && !Object.is(v, -0)) return v;
        return { n: Object.is(v, -0) ? '-0' : String(v) };
      case 'string':
      case 'boolean':
        return v;
      case 'undefined':
        return { u: 1 };
      case 'bigint':
        return { b: v.toString() };
      case 'symbol':
        throw new SnapshotError(`${path}: a symbol cannot be captured`);
      default:
        break;
    }
    if (v === null) return null;
    const ref = seen.get(v);
    if (ref !== undefined) return { r: ref };
    seen.set(v, seen.size);
    if (typeof v === 'function') return { f: Function.prototype.toString.call(v) };
    const o = v as object;
    const tag = hidden(o);
    if (tag !== undefined) throw new SnapshotError(`${path}: ${tag} cannot be captured`);
    if (o instanceof PhysMem) {
      const s = o.snapshot();
      return { pm: [blob(new Uint8Array(s.frames.buffer, s.frames.byteOffset, s.frames.byteLength)), blob(s.data)] };
    }
    if (ArrayBuffer.isView(o)) {
      const ta = o as TypedArray;
      const name = className(ta);
      if (typedArrays[name] === undefined) throw new SnapshotError(`${path}: a ${name} cannot be captured`);
      return { t: name, i: blob(new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength).slice()) };
    }
    if (o instanceof ArrayBuffer) return { ab: blob(new Uint8Array(o).slice()) };
    if (Array.isArray(o)) return o.map((x, i) => walk(x, `${path}[${i}]`));
    if (o instanceof Map) return { m: [...o].map(([k, x], i) => [walk(k, `${path}.key${i}`), walk(x, `${path}.get(${String(k)})`)]) };
    if (o instanceof Set) return { s: [...o].map((x, i) => walk(x, `${path}.item${i}`)) };
    const skip = skips(o);
    const p: Record<string, unknown> = {};
    for (const key of Object.keys(o)) {
      if (skip?.has(key) === true) continue;
      p[key] = walk((o as Record<string, unknown>)[key], `${path}.${key}`);
    }
    return { o: className(o), p };
  };
  return { tree: walk(root, 'root'), blobs };
}

/** What restoreGraph may use beyond the fresh graph: classes to make instances of, functions by source. */
export interface RestoreCatalog {
  classes?: readonly (abstract new (...args: never[]) => unknown)[];
  /** Or a function that makes them, called when the fresh graph has no function of a source. */
  functions?: readonly ((...args: never[]) => unknown)[] | (() => readonly ((...args: never[]) => unknown)[]);
}

/** Overlays `image` (a snapshotGraph of a graph of the same shape) onto `fresh` (see the top of this file). */
export function restoreGraph(fresh: object, image: GraphImage, catalog: RestoreCatalog = {}): void {
  const protos = new Map<string, object>();
  const fns = new Map<string, unknown>();
  for (const c of catalog.classes ?? []) protos.set(c.name, c.prototype as object);
  let more = catalog.functions;
  const addFns = (list: readonly ((...args: never[]) => unknown)[]) => {
    for (const f of list) if (!fns.has(f.toString())) fns.set(f.toString(), f);
  };
  if (Array.isArray(more)) addFns(more);
  const lookup = (src: string): unknown => {
    const f = fns.get(src);
    if (f !== undefined || typeof more !== 'function') return f;
    const made = more();
    more = undefined;
    addFns(made);
    return fns.get(src);
  };
  // The fresh graph's classes and functions.
  const visited = new Set<unknown>();
  const survey = (v: unknown): void => {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function') || visited.has(v)) return;
    visited.add(v);
    if (typeof v === 'function') {
      const src = Function.prototype.toString.call(v);
      if (!fns.has(src)) fns.set(src, v);
      return;
    }
    const o = v as object;
    if (ArrayBuffer.isView(o) || o instanceof ArrayBuffer || o instanceof PhysMem || hidden(o) !== undefined) return;
    if (Array.isArray(o)) o.forEach(survey);
    else if (o instanceof Map) for (const [k, x] of o) {
      survey(k);
      survey(x);
    }
    else if (o instanceof Set) o.forEach(survey);
    else {
      const name = className(o);
      if (name !== '' && !protos.has(name)) protos.set(name, Object.getPrototypeOf(o) as object);
      const skip = skips(o);
      for (const key of Object.keys(o)) if (skip?.has(key) !== true) survey((o as Record<string, unknown>)[key]);
    }
  };
  survey(fresh);

  const objs: unknown[] = [];
  const { blobs } = image;
  const bytesOf = (i: unknown): Uint8Array => {
    const b = typeof i === 'number' ? blobs[i] : undefined;
    if (b === undefined) throw new SnapshotError(`the image refers to binary block ${String(i)}, which it does not have`);
    return b;
  };
  const put = (x: unknown): void => {
    objs.push(x);
  };
  const restore = (cur: unknown, s: unknown, path: string): unknown => {
    if (s === null || typeof s !== 'object') return s;
    if (Array.isArray(s)) {
      const a: unknown[] = Array.isArray(cur) ? cur : [];
      put(a);
      const old = a.slice();
      a.length = s.length;
      for (let i = 0; i < s.length; i++) a[i] = restore(old[i], s[i], `${path}[${i}]`);
      return a;
    }
    const t = s as Record<string, unknown>;
    if ('n' in t) return Number(t.n);
    if ('u' in t) return undefined;
    if ('b' in t) return BigInt(t.b as string);
    if ('r' in t) {
      const i = t.r as number;
      if (i >= objs.length) throw new SnapshotError(`${path}: a reference to object ${i} before it`);
      return objs[i];
    }
    if ('f' in t) {
      const src = t.f as string;
      const f = typeof cur === 'function' && Function.prototype.toString.call(cur) === src ? cur : lookup(src);
      if (f === undefined) throw new SnapshotError(`${path}: no function of the fresh machine has the source ${JSON.stringify(src.slice(0, 80))}`);
      put(f);
      return f;
    }
    if ('pm' in t) {
      if (!(cur instanceof PhysMem)) throw new SnapshotError(`${path}: physical memory where the fresh graph has none`);
      const [fi, di] = t.pm as [number, number];
      const fb = bytesOf(fi);
      const frames = new Float64Array(fb.buffer.slice(fb.byteOffset, fb.byteOffset + fb.byteLength));
      cur.restore(frames, bytesOf(di));
      put(cur);
      return cur;
    }
    if ('t' in t) {
      const make = typedArrays[t.t as string];
      if (make === undefined) throw new SnapshotError(`${path}: unknown typed array ${String(t.t)}`);
      const b = bytesOf(t.i);
      let ta: TypedArray;
      if (cur instanceof (make as unknown as typeof Uint8Array) && (cur as TypedArray).byteLength === b.byteLength) {
        ta = cur as TypedArray;
        new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength).set(b);
      } else {
        const per = (make as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
        ta = new make(b.byteLength / per);
        new Uint8Array(ta.buffer).set(b);
      }
      put(ta);
      return ta;
    }
    if ('ab' in t) {
      const ab = bytesOf(t.ab).slice().buffer;
      put(ab);
      return ab;
    }
    if ('m' in t) {
      const m = cur instanceof Map ? cur : new Map();
      put(m);
      const old = new Map(m);
      m.clear();
      (t.m as [unknown, unknown][]).forEach(([ks, vs], i) => {
        const k = restore(undefined, ks, `${path}.key${i}`);
        m.set(k, restore(old.get(k), vs, `${path}.get(${String(k)})`));
      });
      return m;
    }
    if ('s' in t) {
      const set = cur instanceof Set ? cur : new Set();
      put(set);
      set.clear();
      (t.s as unknown[]).forEach((x, i) => set.add(restore(undefined, x, `${path}.item${i}`)));
      return set;
    }
    if ('o' in t) {
      const name = t.o as string;
      let o: Record<string, unknown>;
      if (cur !== null && typeof cur === 'object' && className(cur) === name) o = cur as Record<string, unknown>;
      else if (name === '') o = {};
      else {
        const proto = protos.get(name);
        if (proto === undefined) throw new SnapshotError(`${path}: no class ${name} in the fresh machine`);
        o = Object.create(proto) as Record<string, unknown>;
      }
      put(o);
      const p = t.p as Record<string, unknown>;
      const skip = skips(o);
      for (const key of Object.keys(o)) if (!(key in p) && skip?.has(key) !== true && typeof o[key] !== 'function') delete o[key];
      for (const key of Object.keys(p)) o[key] = restore(o[key], p[key], `${path}.${key}`);
      return o;
    }
    throw new SnapshotError(`${path}: not a value of a graph image`);
  };
  if (!('o' in (image.tree as object))) throw new SnapshotError('the image is not of an object');
  restore(fresh, image.tree, 'root');
}
