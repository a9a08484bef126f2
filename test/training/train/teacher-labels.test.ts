// A teacher's class names paired with the data set's: the same names in another order, names spelled
// otherwise (case, punctuation a folder cannot hold), and every pairing that is not one to one refused;
// the --teacher-labels file as a JSON list or one name a line, and its malformed forms.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FASHION_MNIST_CLASSES } from "../../../training/data/fashion-mnist.ts";
import {
  MAX_LABEL_FILE_BYTES,
  classOrder,
  labelKey,
  readTeacherLabels,
} from "../../../training/train/teacher-labels.ts";

const dir = mkdtempSync(join(tmpdir(), "nd-teacher-labels-"));
const file = (name: string, text: string | Uint8Array) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const FASHION = FASHION_MNIST_CLASSES;

describe("classOrder", () => {
  it("is null for the same names in the same order", () => {
    expect(classOrder(["a", "b", "c"], ["a", "b", "c"])).toEqual({ order: null, how: "in the data set's order" });
  });

  it("permutes the same names in another order", () => {
    const { order, how } = classOrder(["c", "a", "b"], ["a", "b", "c"]);
    expect(order).toEqual([1, 2, 0]);
    expect(how).toMatch(/in another order/);
  });

  it("pairs Fashion-MNIST's labels with folder names in code-point order, spelled as folders allow", () => {
    const folders = [
      "Ankle_boot",
      "Bag",
      "Coat",
      "Dress",
      "Pullover",
      "Sandal",
      "Shirt",
      "Sneaker",
      "T-shirt_top",
      "Trouser",
    ];
    const { order, how } = classOrder(FASHION, folders);
    expect(order!.map((j) => FASHION[j])).toEqual([
      "Ankle boot",
      "Bag",
      "Coat",
      "Dress",
      "Pullover",
      "Sandal",
      "Shirt",
      "Sneaker",
      "T-shirt/top",
      "Trouser",
    ]);
    expect(how).toMatch(
      /2 matched ignoring case and all but letters and digits \("Ankle boot" = "Ankle_boot", "T-shirt\/top" = "T-shirt_top"\)/,
    );
    expect(labelKey("Ünïcode Café-1")).toBe("ünïcodecafé1");
  });

  it("prefers the exact name to a loose one", () => {
    // "a-b" is exactly a teacher label; "ab" exactly another: no ambiguity although both keys are "ab".
    expect(classOrder(["ab", "a-b"], ["a-b", "ab"]).order).toEqual([1, 0]);
  });

  it("refuses pairings that could go more than one way", () => {
    expect(() => classOrder(["a_b", "A-B", "c"], ["ab", "c", "x"])).toThrow(
      /the data set's class "ab" could be any of its labels "a_b", "A-B" .*--teacher-labels/,
    );
    expect(() => classOrder(["ab", "c", "d"], ["a-b", "A_B", "c"])).toThrow(
      /its label "ab" could be any of the data set's classes "a-b", "A_B"/,
    );
  });

  it("refuses sets that differ, naming what does not pair", () => {
    expect(() => classOrder(["a", "b"], ["a", "b", "c"])).toThrow(
      /it names 2 classes \("a", "b"\) and the data set has 3 \("a", "b", "c"\); the sets must be the same/,
    );
    expect(() => classOrder(["a", "b", "dog"], ["a", "b", "cat"])).toThrow(
      /its classes are not the data set's: the data set's "cat" match none of its labels, and its "dog" match no class of the data set/,
    );
    expect(() => classOrder(["a", "a", "b"], ["a", "b", "c"])).toThrow(/it names the class "a" twice/);
    // Punctuation alone is no name to match loosely.
    expect(() => classOrder(["/", "b"], ["_", "b"])).toThrow(/the data set's "_" match none/);
  });
});

describe("readTeacherLabels", () => {
  it("reads a JSON list, or one label a line (CRLF, a BOM, a final newline)", () => {
    expect(readTeacherLabels(file("l.json", ' ["T-shirt/top", "Trouser"]\n'))).toEqual(["T-shirt/top", "Trouser"]);
    expect(readTeacherLabels(file("l.txt", "\uFEFFT-shirt/top\r\nAnkle boot\r\n\r\n"))).toEqual([
      "T-shirt/top",
      "Ankle boot",
    ]);
  });

  it("refuses a file that gives no list of names, naming the file", () => {
    expect(() => readTeacherLabels(join(dir, "absent.txt"))).toThrow(/absent\.txt: the teacher's label file not found/);
    expect(() => readTeacherLabels(file("bad.json", "[1, 2]"))).toThrow(
      /bad\.json: not a JSON list of class names \(strings\)/,
    );
    expect(() => readTeacherLabels(file("broken.json", '["a", '))).toThrow(
      /broken\.json: not a JSON list of class names: /,
    );
    expect(() => readTeacherLabels(file("empty.txt", "\n\n"))).toThrow(
      /empty\.txt: the teacher's label file names no classes/,
    );
    expect(() => readTeacherLabels(file("gap.txt", "a\n\nb\n"))).toThrow(
      /gap\.txt: label 2 of the teacher's label file is empty/,
    );
    expect(() => readTeacherLabels(file("big.txt", new Uint8Array(MAX_LABEL_FILE_BYTES + 1).fill(97)))).toThrow(
      /big\.txt: the teacher's label file is 1048577 bytes; a list of class names is at most 1048576/,
    );
  });
});
