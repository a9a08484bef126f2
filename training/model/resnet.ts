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
  const convBn = (
    name: string,
    from: string,
    inC: number,
    outC: number,
    kernel: number,
    stride: number,
    relu: boolean,
  ): string => {
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
      const shortcut =
        stride !== 1 || channels !== outC ? convBn(`${name}.shortcut`, x, channels, outC, 1, stride, false) : x;
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

const stages = (widths: number[], blocks: number[]): StageSpec[] =>
  widths.map((channels, i) => ({ channels, blocks: blocks[i]!, stride: i === 0 ? 1 : 2 }));
/** A CIFAR-style ResNet: stem at the first stage's width, stages of widths w, 2w, 4w. */
const resnet = (w: number, blocks: number[]): ResNetSpec => ({
  block: "basic",
  stemChannels: w,
  stages: stages([w, 2 * w, 4 * w], blocks),
});

/**
 * The architectures of the paper at edge size. The three students are one ResNet family (widths w, 2w,
 * 4w) traded depth against width under one budget: at most 100K parameters, parameter counts within
 * 3% and MACs within 10% of each other (test/training/model/resnet.test.ts holds them to it). Widths
 * step by 1.5x (8, 12, 18) and blocks by about 2x (13, 6, 3); narrow-deep's 13th block sits in the
 * middle stage because 12 blocks leave it 5% under the others' parameters. Its widths, and most of
 * the others', are multiples of 8: whole SIMD blocks for onnxruntime's NCHWc kernels.
 * The teacher is the same family at 4x narrow-deep's width and 2 blocks a stage: 7x the students'
 * parameters and MACs (wider runs faster per MAC on CPU than deeper).
 * `widthScale` shrinks every width for quick runs.
 */
export const ARCHITECTURES = {
  /** Wide teacher: 32/64/128 channels, 2 blocks a stage (696K params, 80.5M MACs at 28x28x1). */
  teacher: (k: number): ResNetSpec => resnet(32 * k, [2, 2, 2]),
  /** The standard ResNet of the family at the budget: 12/24/48 channels, 2 blocks a stage (98.8K params). */
  unmodified: (k: number): ResNetSpec => resnet(12 * k, [2, 2, 2]),
  /** Few layers, many channels: 18/36/72 channels, 1 block a stage (98.2K params). */
  wide: (k: number): ResNetSpec => resnet(18 * k, [1, 1, 1]),
  /** Few channels, many layers, the paper's proposal: 8/16/32 channels, 4/5/4 blocks (97.7K params). */
  "narrow-deep": (k: number): ResNetSpec => resnet(8 * k, [4, 5, 4]),
} as const satisfies Record<string, (widthScale: number) => ResNetSpec>;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export function isArchitecture(name: string): name is ArchitectureName {
  return Object.hasOwn(ARCHITECTURES, name);
}

export function architecture(name: string, input: InputShape, numClasses: number, widthScale = 1): Graph {
  if (!isArchitecture(name))
    throw new Error(`unknown architecture "${name}" (known: ${Object.keys(ARCHITECTURES).join(", ")})`);
  if (!(widthScale > 0)) throw new Error(`width scale must be positive, got ${widthScale}`);
  const spec = ARCHITECTURES[name](widthScale);
  const round = (c: number) => Math.max(1, Math.round(c));
  const scaled: ResNetSpec = {
    ...spec,
    stemChannels: round(spec.stemChannels),
    stages: spec.stages.map((s) => ({ ...s, channels: round(s.channels) })),
  };
  return buildResNet(scaled, input, numClasses);
}
