// Which of an ONNX teacher's outputs is which of the data set's classes. A teacher names its classes,
// in the order of its outputs, in its metadata (`labels`, as this project's exporter writes them) or
// in a file given with --teacher-labels (a JSON list, or one label per line). Each data set class is
// matched to one teacher label: the same name first, else the same name compared case-insensitively
// with everything but letters and digits ignored, because class folders cannot hold every name
// ("T-shirt/top" is the folder "T-shirt_top" or "tshirt top"). A match that could go more than one
// way, or names that do not pair up one to one, is refused: a wrong map would teach wrong classes.
import { readFileOrExplain } from "../io/read.ts";
import { excerpt } from "../io/excerpt.ts";

/** More than any list of class names needs; a larger file is refused before it is parsed. */
export const MAX_LABEL_FILE_BYTES = 1 << 20;

/** The names of a --teacher-labels file: a JSON list of strings, or one name per line. */
export function readTeacherLabels(path: string): string[] {
  const fail = (why: string): never => {
    throw new Error(`${path}: ${why}`);
  };
  const bytes = readFileOrExplain(path, "the teacher's label file", (message) => new Error(message));
  if (bytes.length > MAX_LABEL_FILE_BYTES)
    fail(`the teacher's label file is ${bytes.length} bytes; a list of class names is at most ${MAX_LABEL_FILE_BYTES}`);
  const text = bytes.toString("utf8").replace(/^\uFEFF/, "");
  let labels: unknown;
  if (text.trimStart().startsWith("[")) {
    try {
      labels = JSON.parse(text);
    } catch (err) {
      fail(`not a JSON list of class names: ${excerpt((err as Error).message)}`);
    }
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string"))
      fail("not a JSON list of class names (strings)");
  } else {
    labels = text.split(/\r?\n/).map((l) => l.trim());
    while ((labels as string[]).at(-1) === "") (labels as string[]).pop();
  }
  const list = labels as string[];
  const empty = list.findIndex((l) => l.trim() === "");
  if (list.length === 0) fail("the teacher's label file names no classes");
  if (empty >= 0) fail(`label ${empty + 1} of the teacher's label file is empty`);
  return list;
}

/** A name as compared when spellings differ: case-insensitive, letters and digits only. */
export const labelKey = (label: string) =>
  label
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]/gu, "");

export interface ClassOrder {
  /** order[i]: the teacher's output holding the data set's class i; null when they are already in the same order. */
  order: number[] | null;
  /** How the names were paired, for the log. */
  how: string;
}

const quoted = (names: string[]) => excerpt(names.map((n) => JSON.stringify(n)).join(", "));

/** Pairs the data set's classes with the teacher's labels (see the top of this file), or says why not. */
export function classOrder(teacherLabels: string[], classes: string[]): ClassOrder {
  const fail = (why: string): never => {
    throw new Error(why);
  };
  if (teacherLabels.length !== classes.length) {
    fail(
      `it names ${teacherLabels.length} classes (${quoted(teacherLabels)}) and the data set has ${classes.length} (${quoted(classes)}); the sets must be the same`,
    );
  }
  const byName = new Map<string, number>();
  teacherLabels.forEach((label, j) => {
    if (byName.has(label)) fail(`it names the class ${JSON.stringify(excerpt(label))} twice`);
    byName.set(label, j);
  });
  const order = classes.map((name) => byName.get(name) ?? -1);
  const claimed = new Set(order.filter((j) => j >= 0));
  const spelled: string[] = [];
  const unmatched: string[] = [];
  const candidates = new Map<number, number[]>();
  classes.forEach((name, i) => {
    if (order[i]! >= 0) return;
    const key = labelKey(name);
    const options =
      key === "" ? [] : teacherLabels.flatMap((label, j) => (!claimed.has(j) && labelKey(label) === key ? [j] : []));
    if (options.length > 1)
      fail(
        `the data set's class ${JSON.stringify(excerpt(name))} could be any of its labels ${quoted(options.map((j) => teacherLabels[j]!))} (compared ignoring case and all but letters and digits); give the teacher's labels spelled as the classes with --teacher-labels`,
      );
    if (options.length === 0) {
      unmatched.push(name);
      return;
    }
    order[i] = options[0]!;
    candidates.set(options[0]!, [...(candidates.get(options[0]!) ?? []), i]);
    spelled.push(`${JSON.stringify(teacherLabels[options[0]!])} = ${JSON.stringify(name)}`);
  });
  for (const [j, is] of candidates) {
    if (is.length > 1)
      fail(
        `its label ${JSON.stringify(excerpt(teacherLabels[j]!))} could be any of the data set's classes ${quoted(is.map((i) => classes[i]!))} (compared ignoring case and all but letters and digits); give the teacher's labels spelled as the classes with --teacher-labels`,
      );
  }
  if (unmatched.length > 0) {
    const unused = teacherLabels.filter((_, j) => !order.includes(j));
    fail(
      `its classes are not the data set's: the data set's ${quoted(unmatched)} match none of its labels, and its ${quoted(unused)} match no class of the data set (names are compared as they are, then ignoring case and all but letters and digits)`,
    );
  }
  const identity = order.every((j, i) => j === i);
  const parts = [
    identity ? "in the data set's order" : "in another order: its outputs are permuted to the data set's class order",
  ];
  if (spelled.length > 0)
    parts.push(
      excerpt(`${spelled.length} matched ignoring case and all but letters and digits (${spelled.join(", ")})`),
    );
  return { order: identity ? null : order, how: parts.join("; ") };
}
