// Writes tiny data sets in the exact original file formats, for the loader tests.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([header, data]);
}

/** count images of size x size with pixel (i, y, x) = (i * 7 + y * size + x) % 256, label i % 10. */
export function writeFashionMnist(dir: string, counts: { train: number; test: number }, size = 4, gzip = true): void {
  mkdirSync(dir, { recursive: true });
  for (const [split, count] of [
    ["train", counts.train],
    ["t10k", counts.test],
  ] as const) {
    const pixels = Uint8Array.from(
      { length: count * size * size },
      (_, j) => (Math.floor(j / (size * size)) * 7 + (j % (size * size))) % 256,
    );
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
    const write = (name: string, bytes: Buffer) =>
      writeFileSync(join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
    write(`${split}-images-idx3-ubyte`, idxBytes([count, size, size], pixels));
    write(`${split}-labels-idx1-ubyte`, idxBytes([count], labels));
  }
}

/** One CIFAR binary record: label bytes, then red, green, blue planes of 32x32. Pixel value = plane * 50 + image. */
export function cifarRecord(labels: number[], image: number): Buffer {
  const px = Buffer.alloc(3072);
  for (let p = 0; p < 3; p++) px.fill((p * 50 + image) % 256, p * 1024, (p + 1) * 1024);
  px[0] = 255; // red plane, row 0, column 0: marks the top-left pixel
  return Buffer.concat([Buffer.from(labels), px]);
}

export function writeCifar10(root: string, perBatch: number): string {
  const dir = join(root, "cifar-10-batches-bin");
  mkdirSync(dir, { recursive: true });
  let n = 0;
  for (const name of ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]) {
    writeFileSync(
      join(dir, `${name}.bin`),
      Buffer.concat(Array.from({ length: perBatch }, () => cifarRecord([n % 10], n++))),
    );
  }
  writeFileSync(
    join(dir, "batches.meta.txt"),
    "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n",
  );
  return dir;
}

export function writeCifar100(root: string, train: number, test: number): string {
  const dir = join(root, "cifar-100-binary");
  mkdirSync(dir, { recursive: true });
  let n = 0;
  for (const [name, count] of [
    ["train", train],
    ["test", test],
  ] as const) {
    writeFileSync(
      join(dir, `${name}.bin`),
      Buffer.concat(Array.from({ length: count }, () => cifarRecord([n % 20, (n * 3) % 100], n++))),
    );
  }
  return dir;
}

/**
 * A learnable Fashion-MNIST-format data set of size x size images: class k is a bright horizontal bar
 * on row k (flip-invariant) over deterministic noise. size must be at least 10.
 */
export function writeLearnableFashionMnist(dir: string, counts: { train: number; test: number }, size = 10): void {
  mkdirSync(dir, { recursive: true });
  let state = 12345;
  const noise = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 24) % 64;
  };
  for (const [split, count] of [
    ["train", counts.train],
    ["t10k", counts.test],
  ] as const) {
    const pixels = new Uint8Array(count * size * size);
    const labels = Uint8Array.from({ length: count }, (_, i) => (i * 7) % 10);
    for (let i = 0; i < count; i++) {
      for (let p = 0; p < size * size; p++) pixels[i * size * size + p] = noise();
      for (let x = 0; x < size; x++) pixels[i * size * size + labels[i]! * size + x] = 200 + noise() / 2;
    }
    writeFileSync(join(dir, `${split}-images-idx3-ubyte.gz`), gzipSync(idxBytes([count, size, size], pixels)));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte.gz`), gzipSync(idxBytes([count], labels)));
  }
}
