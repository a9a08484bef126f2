// The students' edge budget, held by the architectures themselves: a change to a width or a block
// count that breaks the paper's comparison (matched parameters and MACs) fails here.
import { describe, expect, it } from "vitest";
import { countMacs, countParams } from "../../../training/model/graph.ts";
import { architecture } from "../../../training/model/resnet.ts";

const fashion = { height: 28, width: 28, channels: 1 };
const students = ["unmodified", "wide", "narrow-deep"] as const;
const size = (name: string) => {
  const g = architecture(name, fashion, 10);
  return { params: countParams(g), macs: countMacs(g), convs: g.layers.filter((l) => l.op === "conv").length };
};

describe("architectures", () => {
  it("students fit the edge budget: at most 100K parameters, within 3% of each other, MACs within 10%", () => {
    const s = students.map(size);
    const params = s.map((x) => x.params);
    const macs = s.map((x) => x.macs);
    expect(Math.max(...params)).toBeLessThanOrEqual(100_000);
    expect(Math.max(...params) / Math.min(...params)).toBeLessThanOrEqual(1.03);
    expect(Math.max(...macs) / Math.min(...macs)).toBeLessThanOrEqual(1.1);
  });

  it("trade depth against width: wide has the fewest layers, narrow-deep the most", () => {
    const [unmodified, wide, narrowDeep] = students.map(size);
    expect(wide!.convs).toBeLessThan(unmodified!.convs);
    expect(unmodified!.convs).toBeLessThan(narrowDeep!.convs);
  });

  it("the teacher has at least 4x every student's MACs", () => {
    const teacher = size("teacher").macs;
    for (const s of students) expect(teacher).toBeGreaterThanOrEqual(4 * size(s).macs);
  });

  it("width scale shrinks every width (quick runs)", () => {
    expect(size("narrow-deep").params).toBeGreaterThan(3 * countParams(architecture("narrow-deep", fashion, 10, 0.5)));
  });
});
