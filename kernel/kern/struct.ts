// C structure layouts for kernel structures that live in emulated memory.
//
//   const vm_map_entry = struct('vm_map_entry', [['prev', 'ptr'], ['next', 'ptr'], ...]);
//   cpu.loadPtr(e + vm_map_entry.next)
//
// Fields are laid out in order with natural alignment, as an LP64 C compiler (x86_64 SysV)
// does; the size is rounded up to the largest alignment. `pad` fields and explicit `align`
// reproduce upstream layouts where they matter (per-CPU arrays sharing cache lines, say).

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'ptr' | { bytes: number; align: number };

const sizes: Record<Exclude<FieldType, object>, number> = { u8: 1, u16: 2, u32: 4, u64: 8, ptr: 8 };

function sizeOf(t: FieldType): [number, number] {
  if (typeof t === 'object') return [t.bytes, t.align];
  return [sizes[t], sizes[t]];
}

/** An array field of `count` elements of `t`. */
export function array(t: FieldType, count: number): FieldType {
  const [size, align] = sizeOf(t);
  return { bytes: size * count, align };
}

/** An embedded structure. */
export function embed(s: { sizeof: number; alignof: number }): FieldType {
  return { bytes: s.sizeof, align: s.alignof };
}

export type Layout<F extends string> = { readonly [K in F]: number } & {
  readonly sizeof: number;
  readonly alignof: number;
  readonly structName: string;
};

/** Lays out a structure; returns field offsets plus sizeof/alignof. */
export function struct<const F extends string>(name: string, fields: readonly (readonly [F, FieldType])[], minAlign = 1): Layout<F> {
  const out: Record<string, number | string> = { structName: name };
  let off = 0;
  let maxAlign = minAlign;
  for (const [field, type] of fields) {
    const [size, align] = sizeOf(type);
    off = Math.ceil(off / align) * align;
    if (field in out) throw new Error(`struct ${name}: duplicate field ${field}`);
    out[field] = off;
    off += size;
    maxAlign = Math.max(maxAlign, align);
  }
  out.sizeof = Math.ceil(off / maxAlign) * maxAlign;
  out.alignof = maxAlign;
  return Object.freeze(out) as unknown as Layout<F>;
}
