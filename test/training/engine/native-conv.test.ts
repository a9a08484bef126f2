// The native (onnxruntime) convolution kernels of the wasm backend against the cpu backend: forward,
// input and filter gradients on every geometry the wasm kernels are tested on, and a whole ResNet step.
import { beforeAll, describe, expect, it } from "vitest";
import { nativeGraphCount, useNativeConvolutions } from "../../../training/engine/native-conv.ts";
import { CONV_CASES, PADDINGS, convAndGradients, onBothBackends, paddedConvGradients, relativeError } from "./gradcheck.ts";

describe("native convolutions on wasm", () => {
  beforeAll(() => useNativeConvolutions(true));

  it.each(CONV_CASES)("match cpu for x [%i,%i,%i,%i], %i filters of size %i, stride %i", async (...c) => {
    const before = nativeGraphCount();
    const { cpu, wasm } = await onBothBackends(() => convAndGradients(...c));
    for (let i = 0; i < 3; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
    expect(nativeGraphCount()).toBe(before + 3); // forward, input gradient, filter gradient: all native
  });

  it("gives 'same' and 'valid' padding the cpu backend's gradients", async () => {
    for (const [pad, stride] of PADDINGS) {
      const { cpu, wasm } = await onBothBackends(() => paddedConvGradients(pad, stride));
      for (let i = 0; i < 2; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
    }
  });
});
