// vitest globalSetup for the A/B tests: real teacher hosts (teacher/main.ts processes) on loopback,
// serving a fixture teacher built like the edge fixtures: one well-behaved, one slow, one answering
// garbage, one that wants its token in another header, and the URL of a port where nothing listens.
// The Worker reaches them over the protocol, with the token they were started with.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import type { Manifest, ModelEntry } from "../../../models/schema.ts";
import { type TeacherProcess, launchTeacher } from "../../../teacher/launch.ts";
import type { TeacherHosts } from "../fixture-types.ts";
import { FASHION_LABELS, buildFixtureModels, buildModel } from "./fixtures.ts";

/** Same input and labels as the grey28 student, so the two can be compared. */
const TEACHER_SPEC = {
  name: "teacher28",
  role: "teacher" as const,
  architecture: "teacher",
  height: 28,
  width: 28,
  channels: 1,
  widthScale: 0.125,
  labels: FASHION_LABELS,
  mean: [0.286],
  std: [0.353],
  seed: 3,
};
/** The slow host's delay: well past the TEACHER_TIMEOUT_MS the tests use. */
export const SLOW_TEACHER_DELAY_MS = 3_000;
/** The header one host wants the token in, as a gateway in front of Triton might. */
const CUSTOM_AUTH_HEADER = "X-Teacher-Token";

/** A models folder with the fixture students and the fixture teacher, as the exporter would write it. */
export async function writeTeacherModels(
  dir: string,
): Promise<{ manifestPath: string; teacher: ModelEntry; manifest: Manifest }> {
  const { manifest, files } = await buildFixtureModels();
  const teacher = buildModel(TEACHER_SPEC);
  files.set(teacher.entry.file, teacher.bytes);
  const full: Manifest = { ...manifest, models: [...manifest.models, teacher.entry] };
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
  const manifestPath = join(dir, "manifest.json");
  writeFileSync(manifestPath, JSON.stringify(full, null, 2));
  return { manifestPath, teacher: teacher.entry, manifest: full };
}

/** A fresh teacher token, as scripts/start.ts makes one. */
export const newTeacherToken = () => randomBytes(32).toString("base64url");

/** A loopback URL where nothing listens (a port the OS just handed out and took back). */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), "narrowdeep-teacher-"));
  const hosts: TeacherProcess[] = [];
  try {
    const { manifestPath, teacher } = await writeTeacherModels(dir);
    const token = newTeacherToken();
    const launch = (...extra: string[]) =>
      launchTeacher({
        args: ["--manifest", manifestPath, "--port", "0", "--provider", "cpu", ...extra],
        env: { TEACHER_TOKEN: token },
      });
    hosts.push(
      ...(await Promise.all([
        launch(),
        launch("--fault-delay-ms", String(SLOW_TEACHER_DELAY_MS)),
        launch("--fault-garbage"),
        launch("--auth-header", CUSTOM_AUTH_HEADER),
      ])),
    );
    const [ok, slow, garbage, custom] = hosts as [TeacherProcess, TeacherProcess, TeacherProcess, TeacherProcess];
    const provided: TeacherHosts = {
      entry: teacher,
      token,
      url: ok.url,
      slowUrl: slow.url,
      garbageUrl: garbage.url,
      downUrl: await deadUrl(),
      customHeader: { url: custom.url, header: CUSTOM_AUTH_HEADER },
    };
    project.provide("teacher", provided);
  } catch (err) {
    await Promise.all(hosts.map((h) => h.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
}
