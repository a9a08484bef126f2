import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { architecture } from "../../../training/model/resnet.ts";
import { countMacs, countParams } from "../../../training/model/graph.ts";
import { PRESETS } from "../../../training/config/presets.ts";
import { parseFlag, resolveConfig } from "../../../training/config/resolve.ts";

const file = (content: string) => {
  const path = join(mkdtempSync(join(tmpdir(), "nd-config-")), "c.json");
  writeFileSync(path, content);
  return path;
};
const flags = (...argv: string[]) => {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const p = parseFlag(argv[i]!, () => argv[++i]);
    if (!p) throw new Error(`not a config flag: ${argv[i]}`);
    out[p.key] = p.value;
  }
  return out;
};

describe("configuration", () => {
  it("applies preset, then config file, then flags", () => {
    const path = file(JSON.stringify({ preset: "full", epochs: 7, temperature: 2 }));
    const { preset, config } = resolveConfig({
      file: path,
      flags: flags("--epochs", "3", "--students=wide,narrow-deep", "--no-flip", "--milestones", "0.3,0.6"),
    });
    expect(preset).toBe("full");
    expect(config).toEqual({
      ...PRESETS.full,
      epochs: 3,
      temperature: 2,
      students: ["wide", "narrow-deep"],
      flip: false,
      milestones: [0.3, 0.6],
    });
    expect(resolveConfig({ flags: {} }).config).toEqual(PRESETS.quick);
    expect(resolveConfig({ preset: "quick", file: path, flags: {} }).config.epochs).toBe(7);
  });

  it("names the source of a bad value", () => {
    expect(() => resolveConfig({ file: file('{"alpha": 2}'), flags: {} })).toThrow(
      /c\.json: alpha must be in \[0, 1\], got 2/,
    );
    expect(() => resolveConfig({ file: file('{"epochz": 2}'), flags: {} })).toThrow(
      /c\.json: unknown config field "epochz"/,
    );
    expect(() => resolveConfig({ file: file("{epochs: 2"), flags: {} })).toThrow(/c\.json: not valid JSON/);
    expect(() => resolveConfig({ file: "/nonexistent/x.json", flags: {} })).toThrow(/x\.json: config file not found/);
    expect(() => resolveConfig({ preset: "huge", flags: {} })).toThrow(
      /unknown preset "huge" \(presets: full, paper, quick\)/,
    );
    expect(() => flags("--batch-size", "6.5")).toThrow(/--batch-size: batchSize must be a whole number, got 6.5/);
    expect(() => flags("--students", "teacher")).toThrow(
      /unknown student teacher \(known: unmodified, wide, narrow-deep\)/,
    );
    expect(() => flags("--schedule", "linear")).toThrow(/schedule must be one of: cosine, step/);
    expect(() => flags("--convolutions", "gpu")).toThrow(
      /--convolutions: convolutions must be one of: auto, native, wasm, got "gpu"/,
    );
    expect(() => flags("--epochs")).toThrow(/--epochs needs a value/);
    expect(() => flags("--no-epochs")).toThrow(/only true\/false settings can be negated/);
    expect(parseFlag("--resume", () => "x")).toBeNull();
  });

  it("gives the quick and full presets fair students and a teacher with at least 4x the narrow-deep MACs", () => {
    for (const p of Object.values(PRESETS)) {
      const input = { height: 28, width: 28, channels: 1 };
      const students = p.students.map((s) => architecture(s, input, 10, p.widthScale));
      const params = students.map(countParams);
      expect(Math.max(...params) / Math.min(...params)).toBeLessThan(1.15);
      const teacher = architecture("teacher", input, 10, p.teacherWidthScale);
      expect(countMacs(teacher)).toBeGreaterThanOrEqual(
        4 * countMacs(architecture("narrow-deep", input, 10, p.widthScale)),
      );
    }
  });
});
