// Installs the Debian packages the project needs (Fashion-MNIST data, onnx.checker for the export
// tests) when they are missing, so a fresh machine is set up by `npm install` alone.
// It never fails the install: without root or apt it says what to install by hand.
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";

const needs = [
  { pkg: "dataset-fashion-mnist", present: () => existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") },
  { pkg: "python3-onnx", present: () => existsSync("/usr/lib/python3/dist-packages/onnx/__init__.py") },
];

const missing = needs.filter((n) => !n.present()).map((n) => n.pkg);
if (missing.length === 0 || process.env.NARROWDEEP_SKIP_APT === "1") process.exit(0);

const canApt = process.platform === "linux" && process.getuid?.() === 0 && existsSync("/usr/bin/apt-get");
if (!canApt) {
  console.warn(`narrowdeep: optional system packages missing: ${missing.join(", ")} (install them with apt-get as root)`);
  process.exit(0);
}
try {
  console.log(`narrowdeep: installing ${missing.join(", ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-qq", ...missing], { stdio: "inherit", env });
} catch (err) {
  console.warn(`narrowdeep: apt-get install ${missing.join(" ")} failed: ${err.message}`);
}
