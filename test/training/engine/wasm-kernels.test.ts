import { describe, expect, it } from "vitest";
import {
  CONV_CASES,
  PADDINGS,
  convAndGradients,
  onBothBackends,
  paddedConvGradients,
  relativeError,
} from "./gradcheck.ts";

describe("wasm convolution gradient kernels", () => {
  it.each(CONV_CASES)("match cpu for x [%i,%i,%i,%i], %i filters of size %i, stride %i", async (...c) => {
    const { cpu, wasm } = await onBothBackends(() => convAndGradients(...c));
    for (let i = 0; i < 3; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
  });

  it("gives 'same' and 'valid' padding the cpu backend's gradients too", async () => {
    for (const [pad, stride] of PADDINGS) {
      const { cpu, wasm } = await onBothBackends(() => paddedConvGradients(pad, stride));
      for (let i = 0; i < 2; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
    }
  });
});
