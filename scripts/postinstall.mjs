// Installs the Debian packages the project needs (Fashion-MNIST data, onnx.checker for the export
// tests, chromium for the dashboard's browser test, qemu-user to check int8 files on an emulated
// x86 CPU without VNNI, curl for the test of the README's API examples) when they are missing, so a fresh machine is set
// up by `npm install` alone. It never fails the install: without root or apt it says what to install
// by hand, and each package is installed on its own, so one that fails leaves the others in.
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";

const needs = [
  {
    pkg: "dataset-fashion-mnist",
    present: () => existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
  },
  { pkg: "python3-onnx", present: () => existsSync("/usr/lib/python3/dist-packages/onnx/__init__.py") },
  { pkg: "chromium", present: () => existsSync("/usr/bin/chromium") },
  { pkg: "qemu-user", present: () => existsSync("/usr/bin/qemu-x86_64") },
  { pkg: "curl", present: () => existsSync("/usr/bin/curl") },
];

const missing = needs.filter((n) => !n.present()).map((n) => n.pkg);
if (missing.length === 0 || process.env.NARROWDEEP_SKIP_APT === "1") process.exit(0);

const canApt = process.platform === "linux" && process.getuid?.() === 0 && existsSync("/usr/bin/apt-get");
if (!canApt) {
  console.warn(
    `narrowdeep: optional system packages missing: ${missing.join(", ")} (install them with apt-get as root)`,
  );
  process.exit(0);
}
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
try {
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
} catch (err) {
  console.warn(`narrowdeep: apt-get update failed: ${err.message}`);
}
for (const pkg of missing) {
  try {
    console.log(`narrowdeep: installing ${pkg} with apt-get`);
    execFileSync("apt-get", ["install", "-y", "-qq", pkg], { stdio: "inherit", env });
  } catch (err) {
    console.warn(`narrowdeep: apt-get install ${pkg} failed: ${err.message}`);
  }
}
