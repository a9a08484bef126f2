// One ResNet builder (He et al. 2016, CIFAR-style 3x3 stem) and the paper's architectures by name.
import { type Graph, type InputShape, type Layer, INPUT } from "./graph.ts";

export type BlockType = "basic" | "bottleneck";

export interface StageSpec {
  /** Width of the stage: the block's output channels (basic) or its inner width (bottleneck, output is 4x). */
  channels: number;
  blocks: number;
  /** Stride of the first block of the stage. */
  stride: number;
}

export interface ResNetSpec {
  block: BlockType;
  stemChannels: number;
  stages: StageSpec[];
}

const BOTTLENECK_EXPANSION = 4;

export function buildResNet(spec: ResNetSpec, input: InputShape, numClasses: number): Graph {
  if (spec.stages.length === 0) throw new Error("a ResNet needs at least one stage");
  const layers: Layer[] = [];
  const convBn = (name: string, from: string, inC: number, outC: number, kernel: number, stride: number, relu: boolean): string => {
    layers.push({ op: "conv", name: `${name}.conv`, input: from, kernel, stride, inChannels: inC, outChannels: outC });
    layers.push({ op: "batchnorm", name: `${name}.bn`, input: `${name}.conv`, channels: outC });
    if (!relu) return `${name}.bn`;
    layers.push({ op: "relu", name: `${name}.relu`, input: `${name}.bn` });
    return `${name}.relu`;
  };

  let x = convBn("stem", INPUT, input.channels, spec.stemChannels, 3, 1, true);
  let channels = spec.stemChannels;
  spec.stages.forEach((stage, s) => {
    for (let b = 0; b < stage.blocks; b++) {
      const name = `stage${s + 1}.block${b + 1}`;
      const stride = b === 0 ? stage.stride : 1;
      const outC = spec.block === "basic" ? stage.channels : stage.channels * BOTTLENECK_EXPANSION;
      let y: string;
      if (spec.block === "basic") {
        y = convBn(`${name}.a`, x, channels, stage.channels, 3, stride, true);
        y = convBn(`${name}.b`, y, stage.channels, outC, 3, 1, false);
      } else {
        y = convBn(`${name}.a`, x, channels, stage.channels, 1, 1, true);
        y = convBn(`${name}.b`, y, stage.channels, stage.channels, 3, stride, true);
        y = convBn(`${name}.c`, y, stage.channels, outC, 1, 1, false);
      }
      // Projection shortcut (1x1 conv + BN) only where the shape changes.
      const shortcut = stride !== 1 || channels !== outC ? convBn(`${name}.shortcut`, x, channels, outC, 1, stride, false) : x;
      layers.push({ op: "add", name: `${name}.add`, inputs: [y, shortcut] });
      layers.push({ op: "relu", name: `${name}.out`, input: `${name}.add` });
      x = `${name}.out`;
      channels = outC;
    }
  });
  layers.push({ op: "globalAvgPool", name: "pool", input: x });
  layers.push({ op: "dense", name: "fc", input: "pool", inFeatures: channels, units: numClasses });
  return { input, numClasses, layers, output: "fc" };
}

const stages = (widths: number[], blocks: number): StageSpec[] => widths.map((channels, i) => ({ channels, blocks, stride: i === 0 ? 1 : 2 }));

/**
 * The architectures of the paper, at Fashion-MNIST/CIFAR scale. The three students have matched
 * parameter budgets (within 15%); the teacher has over 4x the narrow-deep student's MACs.
 * `widthScale` shrinks every width for quick runs (the matching holds at any scale).
 */
export const ARCHITECTURES = {
  /** Wide teacher: ResNet-26 layout (4 blocks a stage) at twice the width. */
  teacher: (k: number): ResNetSpec => ({ block: "basic", stemChannels: 32 * k, stages: stages([32 * k, 64 * k, 128 * k], 4) }),
  /** The standard ResNet of the teacher's family at student size (ResNet-20). */
  unmodified: (k: number): ResNetSpec => ({ block: "basic", stemChannels: 16 * k, stages: stages([16 * k, 32 * k, 64 * k], 3) }),
  /** Few layers, many channels. */
  wide: (k: number): ResNetSpec => ({ block: "basic", stemChannels: 30 * k, stages: stages([30 * k, 60 * k, 120 * k], 1) }),
  /** Few channels, many layers: the paper's proposal. */
  "narrow-deep": (k: number): ResNetSpec => ({ block: "basic", stemChannels: 10 * k, stages: stages([10 * k, 20 * k, 40 * k], 8) }),
} as const satisfies Record<string, (widthScale: number) => ResNetSpec>;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export function isArchitecture(name: string): name is ArchitectureName {
  return Object.hasOwn(ARCHITECTURES, name);
}

export function architecture(name: string, input: InputShape, numClasses: number, widthScale = 1): Graph {
  if (!isArchitecture(name)) throw new Error(`unknown architecture "${name}" (known: ${Object.keys(ARCHITECTURES).join(", ")})`);
  if (!(widthScale > 0)) throw new Error(`width scale must be positive, got ${widthScale}`);
  const spec = ARCHITECTURES[name](widthScale);
  const round = (c: number) => Math.max(1, Math.round(c));
  const scaled: ResNetSpec = { ...spec, stemChannels: round(spec.stemChannels), stages: spec.stages.map((s) => ({ ...s, channels: round(s.channels) })) };
  return buildResNet(scaled, input, numClasses);
}
