// Passes over float32 data in WebAssembly SIMD, run on the wasm backend's own memory: the two
// per-channel inner loops of the fused batch norm (batchnorm.ts, [rows, C] data with channels
// innermost) and the ReLU gradient (relu.ts). Plain JS does them at ~1.5 ns an element; four lanes
// at a time they run at the speed of the backend's own element-wise kernels. The module is small
// enough to write out here, instruction by instruction, which spares a WebAssembly toolchain.
// Channels are taken four at a time (any C >= 4: unaligned loads are fine); the caller does the last
// C mod 4 channels (or elements).
//
//   sums(u, v, rows, rowBytes, groups, acc):   for every row and 4-channel group g,
//       acc[g] += [u as 2 x f64x2, u*v as 2 x f64x2]          (acc: groups x 64 bytes of doubles)
//   affine(out, u, v, coef, rows, rowBytes, groups):
//       out = a*u + b*v + k per channel, coef = groups x [a, b, k] (48 bytes a group)
//   reluGrad(out, dy, x, groups):   out = dy where x > 0, else 0, four floats a group (relu.ts)

const I32 = 0x7f;
const V128 = 0x7b;

/** Unsigned LEB128. */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [...leb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

// Instructions used below.
const get = (i: number) => [0x20, ...leb(i)];
const set = (i: number) => [0x21, ...leb(i)];
/** i32.const takes a signed LEB128. */
function i32const(n: number): number[] {
  const out = [0x41];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}
const I32_ADD = [0x6a];
const I32_MUL = [0x6c];
const I32_LT_U = [0x49];
const simd = (op: number, ...imm: number[]) => [0xfd, ...leb(op), ...imm];
const load = (offset: number) => simd(0x00, 0, ...leb(offset)); // align hint 1: any address
const store = (offset: number) => simd(0x0b, 0, ...leb(offset));
const F32X4_ADD = simd(228);
const F32X4_MUL = simd(230);
const F64X2_ADD = simd(240);
const F64X2_PROMOTE_LOW = simd(95);
const F32X4_GT = simd(0x44);
const V128_AND = simd(0x4e);
const V128_ZERO = simd(0x0c, ...new Array<number>(16).fill(0));
/** Lanes 2, 3 of an f32x4 into lanes 0, 1. */
const HIGH_TO_LOW = simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
const increment = (local: number, by: number | number[]) => [
  ...get(local),
  ...(typeof by === "number" ? i32const(by) : by),
  ...I32_ADD,
  ...set(local),
];

/** `for (i = 0; i < n; i++) body` over locals i and n. */
function whileLess(i: number, n: number, body: number[]): number[] {
  return [
    ...i32const(0),
    ...set(i),
    0x02,
    0x40, // block
    ...get(i),
    ...get(n),
    ...I32_LT_U,
    0x45,
    0x0d,
    0x00, // if !(i < n) break
    0x03,
    0x40, // loop
    ...body,
    ...increment(i, 1),
    ...get(i),
    ...get(n),
    ...I32_LT_U,
    0x0d,
    0x00, // continue while i < n
    0x0b,
    0x0b,
  ];
}

/** `for (r = 0; r < rows; r++) { rowStart; for (g = 0; g < groups; g++) groupBody }` */
function rowsAndGroups(
  rows: number,
  groups: number,
  r: number,
  g: number,
  rowStart: number[],
  groupBody: number[],
): number[] {
  return whileLess(r, rows, [...rowStart, ...whileLess(g, groups, groupBody)]);
}

// sums(u0, v1, rows2, rowBytes3, groups4, acc5); locals: r6, g7, pu8, pv9, pa10, x11 (v128), xy12 (v128)
const sumsBody = (() => {
  const rowStart = [
    ...get(6),
    ...get(3),
    ...I32_MUL,
    ...set(10), // pa <- r * rowBytes (temporarily)
    ...get(0),
    ...get(10),
    ...I32_ADD,
    ...set(8),
    ...get(1),
    ...get(10),
    ...I32_ADD,
    ...set(9),
    ...get(5),
    ...set(10),
  ];
  const accumulate = (offset: number, value: number[]) => [
    ...get(10),
    ...get(10),
    ...load(offset),
    ...value,
    ...F64X2_ADD,
    ...store(offset),
  ];
  const groupBody = [
    ...get(8),
    ...load(0),
    ...set(11),
    ...get(11),
    ...get(9),
    ...load(0),
    ...F32X4_MUL,
    ...set(12),
    ...accumulate(0, [...get(11), ...F64X2_PROMOTE_LOW]),
    ...accumulate(16, [...get(11), ...get(11), ...HIGH_TO_LOW, ...F64X2_PROMOTE_LOW]),
    ...accumulate(32, [...get(12), ...F64X2_PROMOTE_LOW]),
    ...accumulate(48, [...get(12), ...get(12), ...HIGH_TO_LOW, ...F64X2_PROMOTE_LOW]),
    ...increment(8, 16),
    ...increment(9, 16),
    ...increment(10, 64),
  ];
  const locals = vec([
    [5, I32],
    [2, V128],
  ]);
  return [...locals, ...rowsAndGroups(2, 4, 6, 7, rowStart, groupBody), 0x0b];
})();

// affine(out0, u1, v2, coef3, rows4, rowBytes5, groups6); locals: r7, g8, po9, pu10, pv11, pc12
const affineBody = (() => {
  const rowStart = [
    ...get(7),
    ...get(5),
    ...I32_MUL,
    ...set(12),
    ...get(0),
    ...get(12),
    ...I32_ADD,
    ...set(9),
    ...get(1),
    ...get(12),
    ...I32_ADD,
    ...set(10),
    ...get(2),
    ...get(12),
    ...I32_ADD,
    ...set(11),
    ...get(3),
    ...set(12),
  ];
  const groupBody = [
    ...get(9),
    ...get(12),
    ...load(0),
    ...get(10),
    ...load(0),
    ...F32X4_MUL,
    ...get(12),
    ...load(16),
    ...get(11),
    ...load(0),
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...get(12),
    ...load(32),
    ...F32X4_ADD,
    ...store(0),
    ...increment(9, 16),
    ...increment(10, 16),
    ...increment(11, 16),
    ...increment(12, 48),
  ];
  const locals = vec([[6, I32]]);
  return [...locals, ...rowsAndGroups(4, 6, 7, 8, rowStart, groupBody), 0x0b];
})();

// reluGrad(out0, dy1, x2, groups3); locals: g4. out = dy where x > 0, else 0 (NaN x gives 0).
const reluGradBody = (() => {
  const groupBody = [
    ...get(0),
    ...get(1),
    ...load(0),
    ...get(2),
    ...load(0),
    ...V128_ZERO,
    ...F32X4_GT,
    ...V128_AND,
    ...store(0),
    ...increment(0, 16),
    ...increment(1, 16),
    ...increment(2, 16),
  ];
  return [...vec([[1, I32]]), ...whileLess(4, 3, groupBody), 0x0b];
})();

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const fnType = (params: number) => [0x60, ...vec(Array.from({ length: params }, () => [I32])), 0x00];
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([fnType(6), fnType(7), fnType(4)])),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, 0x01]])), // memory, min 1 page, no max
    ...section(3, vec([[0], [1], [2]])),
    ...section(
      7,
      vec([
        [...name("sums"), 0x00, 0],
        [...name("affine"), 0x00, 1],
        [...name("reluGrad"), 0x00, 2],
      ]),
    ),
    ...section(
      10,
      vec([
        [...leb(sumsBody.length), ...sumsBody],
        [...leb(affineBody.length), ...affineBody],
        [...leb(reluGradBody.length), ...reluGradBody],
      ]),
    ),
  ]);
}

export interface SimdPasses {
  sums(u: number, v: number, rows: number, rowBytes: number, groups: number, acc: number): void;
  affine(out: number, u: number, v: number, coef: number, rows: number, rowBytes: number, groups: number): void;
  /** out = dy where x > 0, else 0, for `groups` groups of four floats. */
  reluGrad(out: number, dy: number, x: number, groups: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<WebAssembly.Memory, SimdPasses | null>();

/** The passes bound to `memory`, or null where WebAssembly SIMD is unavailable. */
export function simdPasses(memory: WebAssembly.Memory): SimdPasses | null {
  if (compiled === undefined) {
    const bytes = moduleBytes();
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  if (!compiled) return null;
  let passes = instances.get(memory);
  if (passes === undefined) {
    try {
      passes = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SimdPasses;
    } catch {
      passes = null; // e.g. the threaded build's shared memory: the JS loops do the work
    }
    instances.set(memory, passes);
  }
  return passes;
}

/** The passes on a wasm backend's own heap (its typings omit the module's memory), or null. */
export function backendSimdPasses(backend: { wasm: unknown }): SimdPasses | null {
  const memory = (backend.wasm as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
  return memory ? simdPasses(memory) : null;
}
