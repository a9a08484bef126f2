// vitest globalSetup for the workerd tests: builds the fixture models in Node and provides them, and
// brings models/bundle.ts up to date so the Worker entry bundles the shipped models.
import type { TestProject } from "vitest/node";
import { bundleModels } from "../../../scripts/bundle-models.ts";
import { buildFixtures } from "./fixtures.ts";

export default async function setup(project: TestProject): Promise<void> {
  bundleModels("models");
  project.provide("edge", await buildFixtures());
}
