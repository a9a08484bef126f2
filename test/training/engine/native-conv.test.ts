// The native (onnxruntime) convolution kernels of the wasm backend against the cpu backend: forward,
// input and filter gradients on every geometry the wasm kernels are tested on, and a whole ResNet step.
import { beforeAll, describe, expect, it } from "vitest";
import {
  nativeGraphCount,
  nchwcBlock,
  runsBlocked,
  useNativeConvolutions,
} from "../../../training/engine/native-conv.ts";
import {
  BLOCKED_CONV_CASES,
  CONV_CASES,
  PADDINGS,
  convAndGradients,
  onBothBackends,
  paddedConvGradients,
  relativeError,
} from "./gradcheck.ts";

describe("native convolutions on wasm", () => {
  beforeAll(() => useNativeConvolutions(true));

  it.each(CONV_CASES)("match cpu for x [%i,%i,%i,%i], %i filters of size %i, stride %i", async (...c) => {
    const before = nativeGraphCount();
    const { cpu, wasm } = await onBothBackends(() => convAndGradients(...c));
    for (let i = 0; i < 3; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
    expect(nativeGraphCount()).toBe(before + 3); // forward, input gradient, filter gradient: all native
  });

  it("finds onnxruntime's NCHWc channel block on this CPU", () => {
    expect([0, 8, 16]).toContain(nchwcBlock());
  });

  // Forward and input gradient (at stride 1) run on the NCHWc kernels where the channels fill the
  // blocks well enough; the filter gradient and the strided input gradient never do.
  it.each(BLOCKED_CONV_CASES)(
    "match cpu on the NCHWc kernels for x [%i,%i,%i,%i], %i filters of size %i, stride %i",
    async (...c) => {
      const [before, blockedBefore] = [nativeGraphCount(), nativeGraphCount("blocked")];
      const { cpu, wasm } = await onBothBackends(() => convAndGradients(...c));
      for (let i = 0; i < 3; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
      expect(nativeGraphCount()).toBe(before + 3);
      const [, , , ci, co, , stride] = c;
      expect(nativeGraphCount("blocked") - blockedBefore).toBe(runsBlocked(ci, co) ? (stride === 1 ? 2 : 1) : 0);
    },
  );

  it("takes the NCHWc kernels where padding to whole blocks adds at most half the work", () => {
    const b = nchwcBlock();
    if (b === 0) return expect(runsBlocked(16, 16)).toBe(false);
    expect([
      runsBlocked(b, 2 * b),
      runsBlocked(2 * b - 2, 2 * b - 2),
      runsBlocked(b + 2, b + 2),
      runsBlocked(1, 2 * b),
    ]).toEqual([true, true, false, false]);
  });

  it.each([
    [3, 5],
    [16, 16], // NCHWc: asymmetric explicit pads
  ])("gives 'same' and 'valid' padding the cpu backend's gradients (%i to %i channels)", async (ci, co) => {
    for (const [pad, stride] of PADDINGS) {
      const { cpu, wasm } = await onBothBackends(() => paddedConvGradients(pad, stride, ci, co));
      for (let i = 0; i < 2; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
    }
  });
});
