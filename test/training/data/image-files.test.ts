// Data sets of image files: an image folder (train/val/test class folders, or a seeded hold-out) and
// the Pascal VOC layout (multi-hot targets from XML), on small folders these tests write.
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataError } from "../../../training/data/dataset.ts";
import { type FileSetOptions, decodeCount } from "../../../training/data/decode-set.ts";
import { fileSetOptions, loadDataset, openDataset } from "../../../training/data/index.ts";
import { prepareData } from "../../../training/data/prepare.ts";
import { VOC_CLASSES } from "../../../training/data/voc.ts";
import { parseXml, vocObjects } from "../../../training/data/voc-xml.ts";
import { craftedImages } from "../../src/crafted-images.ts";
import { pngBytes, writeImageFolder, writeVoc } from "./image-fixtures.ts";

const temp = (name: string) => mkdtempSync(join(tmpdir(), `nd-${name}-`));
const options = (o: Partial<FileSetOptions> = {}, lines: string[] = []): FileSetOptions => ({
  ...fileSetOptions({ seed: 3 }, (l) => lines.push(l)),
  ...o,
});

/** Mean brightness of the band of class k (of `classes`) in image i of an NHWC set, minus the rest. */
function bandContrast(
  set: { images: Uint8Array; height: number; width: number; channels: number },
  i: number,
  k: number,
  classes: number,
): number {
  const { height: h, width: w, channels: c } = set;
  let inside = 0;
  let outside = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = set.images[((i * h + y) * w + x) * c]!;
      if (Math.floor(((x + 0.5) / w) * classes) === k) inside += v;
      else outside += v;
    }
  return inside / ((h * w) / classes) - outside / (h * w * (1 - 1 / classes));
}

describe("image folder data sets", () => {
  const classes = ["cat", "ant", "bee"];

  it("reads train/val/test class folders: sorted classes, the common size, RGB for mixed colour types, right labels", async () => {
    const dir = temp("folder");
    writeImageFolder(dir, { classes, train: 8, val: 4, test: 4 });
    writeFileSync(join(dir, "train", "ant", "notes.txt"), "not an image");
    const lines: string[] = [];
    const ds = await openDataset("folder", dir, options({}, lines));
    expect(ds.classes).toEqual(["ant", "bee", "cat"]); // code-point order, not the order written
    expect([ds.train.count, ds.val!.count, ds.test.count]).toEqual([24, 12, 12]);
    // 3 of every 4 files are 12x12 (the rest 20x16); grey, RGB and JPEG files together make RGB.
    expect([ds.train.width, ds.train.height, ds.train.channels]).toEqual([12, 12, 3]);
    expect(ds.train.targets).toBeUndefined();
    for (const set of [ds.train, ds.val!, ds.test]) {
      for (let i = 0; i < set.count; i++) {
        const label = set.labels[i]!;
        const written = classes.indexOf(ds.classes[label]!);
        // The band of the image's own class is the bright one: images went to the right label.
        expect(bandContrast(set, i, written, classes.length)).toBeGreaterThan(100);
      }
    }
    expect(lines.some((l) => /ignored 1 entries that are not PNG or JPEG .*notes\.txt/.test(l))).toBe(true);
    const prepared = prepareData(ds, { trainLimit: 0, valSize: 5000, testLimit: 0, seed: 3 });
    expect(prepared.val).toBe(ds.val); // its own validation split: valSize does not apply
    expect(prepared.normalization.mean).toHaveLength(3);
  });

  it("holds val and test out of train per class, seeded, when the folder has none", async () => {
    const dir = temp("holdout");
    writeImageFolder(dir, { classes, train: 10 });
    const a = await openDataset("folder", dir, options({ holdout: 0.2 }));
    expect([a.train.count, a.val!.count, a.test.count]).toEqual([18, 6, 6]);
    for (const set of [a.val!, a.test]) expect([...set.labels].sort()).toEqual([0, 0, 1, 1, 2, 2]);
    const again = await openDataset("folder", dir, options({ holdout: 0.2 }));
    expect(again.test.images).toEqual(a.test.images);
    const other = await openDataset("folder", dir, options({ holdout: 0.2, seed: 4 }));
    expect(other.test.images).not.toEqual(a.test.images);
  });

  it("resizes to --input-size and converts to --channels 1 with the Worker's preprocessing", async () => {
    const dir = temp("geometry");
    writeImageFolder(dir, { classes, train: 4, val: 1, test: 1 });
    const ds = await openDataset("folder", dir, options({ size: { width: 8, height: 6 }, channels: 1 }));
    expect([ds.train.width, ds.train.height, ds.train.channels]).toEqual([8, 6, 1]);
    expect(ds.train.images).toHaveLength(12 * 8 * 6);
  });

  it("keeps grey images exactly as they are at their own size", async () => {
    const dir = temp("grey");
    for (const [k, name] of ["a", "b"].entries()) {
      mkdirSync(join(dir, "train", name), { recursive: true });
      for (let i = 0; i < 3; i++)
        writeFileSync(
          join(dir, "train", name, `${i}.png`),
          pngBytes(5, 4, 1, (x, y) => (x * 40 + y * 7 + i + k * 100) % 256),
        );
    }
    const ds = await openDataset("folder", dir, options({ holdout: 0.34 }));
    expect(ds.train.channels).toBe(1);
    const first = ds.train.images.subarray(0, 20);
    const label = ds.train.labels[0]!;
    const expected = Array.from({ length: 3 }, (_, i) =>
      Array.from({ length: 20 }, (_, p) => ((p % 5) * 40 + Math.floor(p / 5) * 7 + i + label * 100) % 256),
    );
    expect(expected.some((e) => e.every((v, p) => v === first[p]))).toBe(true);
  });

  it("reports an unreadable image by its path and skips it, or refuses the data set", async () => {
    const dir = temp("bad");
    writeImageFolder(dir, { classes, train: 4, val: 1, test: 1 });
    const good = readFileSync(join(dir, "train", "bee", "img0.png"));
    writeFileSync(join(dir, "train", "bee", "truncated.png"), good.subarray(0, 60));
    writeFileSync(join(dir, "train", "cat", "fake.jpg"), "this is text, not a JPEG");
    const lines: string[] = [];
    const ds = await openDataset("folder", dir, options({}, lines));
    expect(ds.train.count).toBe(12);
    const skipped = lines.filter((l) => l.startsWith("data: skipping an unreadable image"));
    expect(skipped).toHaveLength(2);
    expect(skipped.join("\n")).toMatch(/bee\/truncated\.png: cannot decode the PNG image/);
    expect(skipped.join("\n")).toMatch(/cat\/fake\.jpg: the image must be PNG or JPEG/);
    await expect(openDataset("folder", dir, options({ skipUnreadable: false }))).rejects.toThrow(
      /(truncated\.png|fake\.jpg): .*--skip-unreadable skips such files instead/,
    );
  });

  it("skips an entry it cannot stat (a symlink loop) with a message, or refuses naming it", async () => {
    const dir = temp("loop");
    writeImageFolder(dir, { classes, train: 4, val: 1, test: 1 });
    const loop = join(dir, "train", "bee", "loop.png");
    symlinkSync("loop.png", loop);
    const lines: string[] = [];
    const ds = await openDataset("folder", dir, options({}, lines));
    expect(ds.train.count).toBe(12);
    expect(lines).toContain(`data: skipping an unreadable entry: ${loop}: cannot read it (ELOOP)`);
    await expect(openDataset("folder", dir, options({ skipUnreadable: false }))).rejects.toThrow(
      `${loop}: cannot read it (ELOOP) (--skip-unreadable skips such entries instead)`,
    );
  });

  it("skips crafted images (decompression bombs, a second IHDR, chunk and scan floods) with the reason, or refuses the data set", async () => {
    const dir = temp("crafted");
    writeImageFolder(dir, { classes, train: 4, val: 1, test: 1 });
    const crafted = craftedImages();
    crafted.forEach((c, i) => {
      writeFileSync(join(dir, "train", "bee", `crafted${i}.${c.bytes[0] === 0xff ? "jpg" : "png"}`), c.bytes);
    });
    const lines: string[] = [];
    const ds = await openDataset("folder", dir, options({}, lines));
    expect(ds.train.count).toBe(12);
    const skipped = lines.filter((l) => l.startsWith("data: skipping an unreadable image"));
    expect(skipped).toHaveLength(crafted.length);
    crafted.forEach((c, i) => {
      expect(
        skipped.find((l) => l.includes(`crafted${i}.`)),
        c.name,
      ).toMatch(c.reason);
    });
    await expect(openDataset("folder", dir, options({ skipUnreadable: false }))).rejects.toThrow(
      /crafted\d\.(png|jpg): .*--skip-unreadable skips such files instead/,
    );
  });

  it("refuses empty class folders, a missing train/, a single class and val classes not in train", async () => {
    const dir = temp("empty");
    await expect(openDataset("folder", dir, options())).rejects.toThrow(new RegExp(`${join(dir, "train")}: not found`));
    writeImageFolder(dir, { classes, train: 3 });
    mkdirSync(join(dir, "train", "dog"));
    await expect(openDataset("folder", dir, options())).rejects.toThrow(
      new RegExp(`${join(dir, "train", "dog")}: no PNG or JPEG images`),
    );
    const one = temp("one");
    writeImageFolder(one, { classes: ["only"], train: 3 });
    await expect(openDataset("folder", one, options())).rejects.toThrow(/only one class folder \("only"\)/);
    const stray = temp("stray");
    writeImageFolder(stray, { classes, train: 3, val: 1 });
    mkdirSync(join(stray, "val", "zebra"));
    await expect(openDataset("folder", stray, options())).rejects.toThrow(
      /val\/zebra: class "zebra" is not one of the training classes/,
    );
    expect(() => loadDataset("folder", dir)).toThrow(DataError);
  });

  it("decodes each file once: a second load of the same files is served from memory", async () => {
    const dir = temp("cache");
    writeImageFolder(dir, { classes, train: 4, val: 1, test: 1 });
    const before = decodeCount();
    const a = await openDataset("folder", dir, options());
    expect(decodeCount() - before).toBe(18);
    const b = await openDataset("folder", dir, options());
    expect(decodeCount() - before).toBe(18);
    expect(b.train).toBe(a.train);
    // Another geometry is another set.
    await openDataset("folder", dir, options({ channels: 1 }));
    expect(decodeCount() - before).toBe(36);
  });
});

describe("Pascal VOC layout", () => {
  it("gives multi-hot targets from the annotations; the test split is val.txt and validation is held out of train", async () => {
    const dir = temp("voc");
    const names = ["dog", "cat", "person"];
    const { targets } = writeVoc(dir, names, { train: 20, val: 8 });
    const lines: string[] = [];
    const ds = await openDataset("voc", dir, options({ holdout: 0.2 }, lines));
    // Names all VOC classes: VOC's 20, in VOC's order.
    expect(ds.classes).toEqual(VOC_CLASSES);
    expect([ds.train.count, ds.val!.count, ds.test.count]).toEqual([16, 4, 8]);
    expect([ds.train.width, ds.train.height, ds.train.channels]).toEqual([16, 16, 3]);
    const ids = readFileSync(join(dir, "ImageSets", "Main", "val.txt"), "utf8")
      .trim()
      .split("\n");
    ids.forEach((id, i) => {
      const expected = VOC_CLASSES.map((c) => targets.get(id)![names.indexOf(c)] ?? 0);
      expect([...ds.test.targets!.subarray(i * 20, (i + 1) * 20)], id).toEqual(expected);
      expect(ds.test.labels[i]).toBe(expected.indexOf(1));
    });
    expect(lines.some((l) => /validation held out of train\.txt \(4 images/.test(l))).toBe(true);
  });

  it("takes test.txt as the test split and val.txt for validation when both exist; custom class names in code-point order", async () => {
    const dir = join(temp("voc-root"), "VOCdevkit", "VOC2099");
    writeVoc(dir, ["zebra", "apple", "kiwi"], { train: 12, val: 6 });
    const main = join(dir, "ImageSets", "Main");
    writeFileSync(
      join(main, "test.txt"),
      readFileSync(join(main, "train.txt"), "utf8").split("\n").slice(0, 5).join("\n"),
    );
    const ds = await openDataset("voc", join(dir, "..", ".."), options());
    expect(ds.classes).toEqual(["apple", "kiwi", "zebra"]);
    expect([ds.train.count, ds.val!.count, ds.test.count]).toEqual([12, 6, 5]);
    expect(ds.train.targets).toHaveLength(12 * 3);
  });

  it("refuses missing or malformed annotations by file, and skips or refuses missing images", async () => {
    const dir = temp("voc-bad");
    writeVoc(dir, ["dog", "cat"], { train: 6, val: 3 });
    const ids = readFileSync(join(dir, "ImageSets", "Main", "train.txt"), "utf8")
      .trim()
      .split("\n");
    writeFileSync(join(dir, "Annotations", `${ids[1]}.xml`), "<annotation><object><name>dog</name></annotation>");
    await expect(openDataset("voc", dir, options())).rejects.toThrow(
      new RegExp(`${ids[1]}\\.xml: not a VOC annotation: </annotation> closes <object>`),
    );
    writeFileSync(
      join(dir, "Annotations", `${ids[1]}.xml`),
      "<annotation><object><pose>Left</pose></object></annotation>",
    );
    await expect(openDataset("voc", dir, options())).rejects.toThrow(/object 1 has no <name>/);
    writeFileSync(
      join(dir, "Annotations", `${ids[1]}.xml`),
      "<annotation><object><name>dog</name></object></annotation>",
    );
    writeFileSync(join(dir, "JPEGImages", `${ids[2]}.jpg`), "");
    const lines: string[] = [];
    const ds = await openDataset("voc", dir, options({ holdout: 0.2 }, lines));
    expect(ds.train.count + ds.val!.count).toBe(5);
    expect(lines.join("\n")).toMatch(new RegExp(`skipping an unreadable image: .*${ids[2]}\\.jpg`));
    await expect(openDataset("voc", dir, options({ skipUnreadable: false }))).rejects.toThrow(
      new RegExp(`${ids[2]}\\.jpg`),
    );
    writeFileSync(join(dir, "ImageSets", "Main", "train.txt"), `${ids.join("\n")}\nmissing_id\n`);
    await expect(openDataset("voc", dir, options())).rejects.toThrow(/missing_id\.xml: not found/);
    await expect(openDataset("voc", temp("not-voc"), options())).rejects.toThrow(/not a Pascal VOC folder/);
  });

  it("refuses an image id that is a path, naming the list and line", async () => {
    const dir = temp("voc-ids");
    writeVoc(dir, ["dog", "cat"], { train: 4, val: 2 });
    const list = join(dir, "ImageSets", "Main", "train.txt");
    const ids = readFileSync(list, "utf8").trim().split("\n");
    for (const bad of ["../../etc/passwd", "..", "/etc/passwd", "a/b", ".hidden", "x\\..\\y"]) {
      writeFileSync(list, `${ids[0]}\n${bad} 1\n`);
      await expect(openDataset("voc", dir, options()), bad).rejects.toThrow(
        `${list}:2: image id ${JSON.stringify(bad)} is not a file name`,
      );
    }
  });

  it("parses the annotation XML: entities, comments, an object's own name and not its parts'", () => {
    const xml = `<?xml version="1.0"?><!-- c --><annotation><object><name>dog &amp; cat</name><difficult>1</difficult><part><name>head</name></part></object><object><name><![CDATA[person]]></name></object></annotation>`;
    expect(vocObjects(xml)).toEqual([
      { name: "dog & cat", difficult: true },
      { name: "person", difficult: false },
    ]);
    expect(() => parseXml("<a><b></a>")).toThrow(/<\/a> closes <b>/);
    expect(() => parseXml("<a>")).toThrow(/<a> is never closed/);
    expect(() => parseXml("<a/><b/>")).toThrow(/more than one root/);
    expect(() => vocObjects("<root/>")).toThrow(/not <annotation>/);
  });
});
