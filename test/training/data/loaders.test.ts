import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CIFAR100_CLASSES, loadCifar } from "../../../training/data/cifar.ts";
import { FASHION_MNIST_CLASSES, loadFashionMnist } from "../../../training/data/fashion-mnist.ts";
import { loadDataset } from "../../../training/data/index.ts";
import { cifarRecord, idxBytes, writeCifar10, writeCifar100, writeFashionMnist } from "./fixtures.ts";

const tmp = () => mkdtempSync(join(tmpdir(), "nd-data-"));

describe("Fashion-MNIST IDX loader", () => {
  for (const gzip of [true, false]) {
    it(`reads ${gzip ? "gzip" : "uncompressed"} IDX files`, () => {
      const dir = tmp();
      writeFashionMnist(dir, { train: 12, test: 5 }, 4, gzip);
      const ds = loadFashionMnist(dir);
      expect(ds.classes).toEqual(FASHION_MNIST_CLASSES);
      expect(ds.train).toMatchObject({ count: 12, height: 4, width: 4, channels: 1 });
      expect(ds.test.count).toBe(5);
      expect([...ds.train.labels]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      // image 3, row 1, column 2 = (3 * 7 + 1 * 4 + 2) % 256
      expect(ds.train.images[3 * 16 + 1 * 4 + 2]).toBe(27);
    });
  }

  it("names the missing file", () => {
    const dir = tmp();
    writeFashionMnist(dir, { train: 3, test: 2 });
    rmSync(join(dir, "t10k-labels-idx1-ubyte.gz"));
    expect(() => loadFashionMnist(dir)).toThrow(/t10k-labels-idx1-ubyte\(\.gz\): file not found/);
  });

  it("names a truncated file and says what is missing", () => {
    const dir = tmp();
    writeFashionMnist(dir, { train: 3, test: 2 }, 4, false);
    const path = join(dir, "train-images-idx3-ubyte");
    writeFileSync(path, readFileSync(path).subarray(0, 40));
    expect(() => loadFashionMnist(dir)).toThrow(
      /train-images-idx3-ubyte: truncated: header promises 48 bytes of data for \[3, 4, 4\], file has 24/,
    );
  });

  it("rejects a file that is not IDX, broken gzip, and mismatched counts", () => {
    const dir = tmp();
    writeFashionMnist(dir, { train: 3, test: 2 });
    writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), gzipSync(Buffer.from("<html>not found</html>")));
    expect(() => loadFashionMnist(dir)).toThrow(/train-images-idx3-ubyte\.gz: not an IDX file/);
    writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    expect(() => loadFashionMnist(dir)).toThrow(/train-images-idx3-ubyte\.gz: broken gzip data/);
    writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), gzipSync(idxBytes([4, 4, 4], new Uint8Array(64))));
    expect(() => loadFashionMnist(dir)).toThrow(
      /train-labels-idx1-ubyte\.gz: has 3 labels but .*train-images-idx3-ubyte\.gz has 4 images/,
    );
  });

  it("rejects out-of-range labels", () => {
    const dir = tmp();
    writeFashionMnist(dir, { train: 3, test: 2 });
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte.gz"), gzipSync(idxBytes([2], Uint8Array.from([1, 12]))));
    expect(() => loadFashionMnist(dir)).toThrow(/t10k-labels-idx1-ubyte\.gz: label 12 at index 1 is not a class/);
  });
});

describe("CIFAR binary loaders", () => {
  it("reads CIFAR-10 batches and interleaves the colour planes to NHWC", () => {
    const root = tmp();
    writeCifar10(root, 2);
    const ds = loadCifar("cifar10", root);
    expect(ds.train).toMatchObject({ count: 10, height: 32, width: 32, channels: 3 });
    expect(ds.test.count).toBe(2);
    expect(ds.classes[9]).toBe("truck");
    expect([...ds.train.labels]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const img = 3 * 3072;
    expect([...ds.train.images.subarray(img, img + 3)]).toEqual([255, 53, 103]); // top-left pixel: marked red
    expect([...ds.train.images.subarray(img + 3, img + 6)]).toEqual([3, 53, 103]); // next pixel: R, G, B
  });

  it("reads CIFAR-100 with the fine label and built-in names when the names file is absent", () => {
    const dir = writeCifar100(tmp(), 4, 2);
    const ds = loadDataset("cifar100", dir);
    expect(ds.classes).toEqual(CIFAR100_CLASSES);
    expect(ds.classes).toHaveLength(100);
    expect([...ds.train.labels]).toEqual([0, 3, 6, 9]);
    expect([...ds.test.labels]).toEqual([12, 15]);
  });

  it("names a truncated batch file, a missing one, and a bad label", () => {
    const root = tmp();
    const dir = writeCifar10(root, 2);
    const path = join(dir, "data_batch_3.bin");
    writeFileSync(path, readFileSync(path).subarray(0, 5000));
    expect(() => loadCifar("cifar10", root)).toThrow(
      /data_batch_3\.bin: 5000 bytes is not a whole number of 3073-byte records/,
    );
    rmSync(path);
    expect(() => loadCifar("cifar10", root)).toThrow(/data_batch_3\.bin: file not found/);
    writeFileSync(path, cifarRecord([10], 0));
    expect(() => loadCifar("cifar10", root)).toThrow(/data_batch_3\.bin: record 0 has label 10, not a class \(0-9\)/);
  });

  it("rejects an unknown data set by name", () => {
    expect(() => loadDataset("imagenet", "/nowhere")).toThrow(
      /unknown data set "imagenet" \(known: fashion-mnist, cifar10, cifar100, folder, voc\)/,
    );
  });
});
