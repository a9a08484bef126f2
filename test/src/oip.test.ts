// Open Inference Protocol endpoints, as a Triton client uses them, and parity with onnxruntime-node.
import { describe, expect, it } from "vitest";
import { HEADER_LENGTH } from "../../src/oip/types.ts";
import { entryOf, fixtureApp, fixtures, inferBody, postJson } from "./helpers.ts";

interface Output {
  name: string;
  shape: number[];
  datatype: string;
  data?: number[];
  parameters?: Record<string, unknown>;
}
interface InferReply {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: Output[];
}

const app = fixtureApp();
const ref = fixtures.references.find((r) => r.model === "grey28" && r.dims[0] === 3)!;

function nest(flat: number[], dims: number[]): unknown {
  if (dims.length === 1) return flat;
  const inner = dims.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: dims[0]! }, (_, i) => nest(flat.slice(i * inner, (i + 1) * inner), dims.slice(1)));
}

describe("server endpoints", () => {
  it("GET /v2 describes the server", async () => {
    const res = await app.request("/v2");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: "narrowdeep",
      version: "0.1.0",
      extensions: ["classification", "binary_tensor_data", "model_configuration"],
    });
  });

  it("GET /v2/health/live and /v2/health/ready", async () => {
    expect(await (await app.request("/v2/health/live")).json()).toEqual({ live: true });
    const ready = await app.request("/v2/health/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
  });
});

describe("model endpoints", () => {
  it("GET /v2/models/{name} gives the metadata, with or without the version path", async () => {
    for (const path of ["/v2/models/rgb32", "/v2/models/rgb32/versions/1"]) {
      const res = await app.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("X-Model-Name")).toBe("rgb32");
      expect(res.headers.get("X-Model-Version")).toBe("1");
      expect(await res.json()).toEqual({
        name: "rgb32",
        versions: ["1"],
        platform: "onnxruntime_onnx",
        inputs: [{ name: "input", datatype: "FP32", shape: [-1, 3, 32, 32] }],
        outputs: [
          { name: "logits", datatype: "FP32", shape: [-1, 10] },
          { name: "probabilities", datatype: "FP32", shape: [-1, 10] },
        ],
      });
    }
  });

  it("GET /v2/models/{name}/config gives Triton's model configuration", async () => {
    const res = await app.request("/v2/models/grey28/config");
    expect(await res.json()).toEqual({
      name: "grey28",
      platform: "onnxruntime_onnx",
      backend: "onnxruntime",
      version_policy: { specific: { versions: ["1"] } },
      max_batch_size: 64,
      input: [{ name: "input", data_type: "TYPE_FP32", format: "FORMAT_NCHW", dims: [1, 28, 28] }],
      output: [
        { name: "logits", data_type: "TYPE_FP32", dims: [10] },
        { name: "probabilities", data_type: "TYPE_FP32", dims: [10] },
      ],
    });
  });

  it("GET /v2/models/{name}/ready loads the model", async () => {
    const res = await app.request("/v2/models/grey28/versions/1/ready");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "grey28", ready: true });
  });
});

describe("POST /v2/models/{name}/infer", () => {
  it("answers logits and probabilities for a batch, flat data", async () => {
    const res = await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input));
    expect(res.status).toBe(200);
    const body = (await res.json()) as InferReply;
    expect(body.model_name).toBe("grey28");
    expect(body.model_version).toBe("1");
    expect(body.id).toBeUndefined();
    expect(body.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ["logits", "FP32", [3, 10]],
      ["probabilities", "FP32", [3, 10]],
    ]);
    const probs = body.outputs[1]!.data!;
    for (let b = 0; b < 3; b++) expect(probs.slice(b * 10, b * 10 + 10).reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
    // Each batch item is its own image: the rows differ.
    expect(body.outputs[0]!.data!.slice(0, 10)).not.toEqual(body.outputs[0]!.data!.slice(10, 20));
  });

  it("takes nested data following the shape and gives the same answer", async () => {
    const flat = (await (
      await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input))
    ).json()) as InferReply;
    const body = { inputs: [{ name: "input", shape: ref.dims, datatype: "FP32", data: nest(ref.input, ref.dims) }] };
    const nested = (await (await postJson(app, "/v2/models/grey28/infer", body)).json()) as InferReply;
    expect(nested.outputs).toEqual(flat.outputs);
  });

  it("a batch gives each item what it gets alone", async () => {
    const batch = (await (
      await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input))
    ).json()) as InferReply;
    const size = 28 * 28;
    const second = ref.input.slice(size, 2 * size);
    const alone = (await (
      await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", [1, 1, 28, 28], second))
    ).json()) as InferReply;
    const logits = alone.outputs[0]!.data!;
    batch.outputs[0]!.data!.slice(10, 20).forEach((v, i) => {
      expect(v).toBeCloseTo(logits[i]!, 4);
    });
  });

  it("honours the outputs list (subset and order) and echoes the id", async () => {
    const res = await postJson(
      app,
      "/v2/models/grey28/versions/1/infer",
      inferBody("grey28", [1, 1, 28, 28], ref.input.slice(0, 784), {
        id: "req-42",
        outputs: [{ name: "probabilities" }],
      }),
    );
    const body = (await res.json()) as InferReply;
    expect(body.id).toBe("req-42");
    expect(body.outputs.map((o) => o.name)).toEqual(["probabilities"]);
    const both = (await (
      await postJson(
        app,
        "/v2/models/grey28/infer",
        inferBody("grey28", [1, 1, 28, 28], ref.input.slice(0, 784), {
          outputs: [{ name: "probabilities" }, { name: "logits" }],
        }),
      )
    ).json()) as InferReply;
    expect(both.outputs.map((o) => o.name)).toEqual(["probabilities", "logits"]);
  });

  it("speaks Triton's binary tensor data extension both ways", async () => {
    const rgb = fixtures.references.find((r) => r.model === "rgb32" && r.dims[0] === 1)!;
    const json = new TextEncoder().encode(
      JSON.stringify({
        inputs: [
          { name: "input", shape: rgb.dims, datatype: "FP32", parameters: { binary_data_size: rgb.input.length * 4 } },
        ],
        outputs: [{ name: "logits", parameters: { binary_data: true } }, { name: "probabilities" }],
      }),
    );
    const body = new Uint8Array(json.length + rgb.input.length * 4);
    body.set(json);
    const view = new DataView(body.buffer);
    rgb.input.forEach((v, i) => {
      view.setFloat32(json.length + i * 4, v, true);
    });
    const res = await app.request("/v2/models/rgb32/infer", {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream", [HEADER_LENGTH]: String(json.length) },
      body,
    });
    expect(res.status).toBe(200);
    const headerLength = Number(res.headers.get(HEADER_LENGTH));
    const bytes = new Uint8Array(await res.arrayBuffer());
    const reply = JSON.parse(new TextDecoder().decode(bytes.subarray(0, headerLength))) as InferReply;
    expect(reply.outputs[0]).toEqual({
      name: "logits",
      shape: [1, 10],
      datatype: "FP32",
      parameters: { binary_data_size: 40 },
    });
    expect(reply.outputs[1]!.data).toHaveLength(10);
    const out = new DataView(bytes.buffer, headerLength);
    for (let i = 0; i < 10; i++) expect(Math.abs(out.getFloat32(i * 4, true) - rgb.logits[i]!)).toBeLessThan(1e-4);
  });

  it("answers every output in binary when binary_data_output is set (a Triton client's default)", async () => {
    const res = await postJson(
      app,
      "/v2/models/grey28/infer",
      inferBody("grey28", [1, 1, 28, 28], ref.input.slice(0, 784), { parameters: { binary_data_output: true } }),
    );
    expect(res.headers.get("Content-Type")).toBe("application/octet-stream");
    const headerLength = Number(res.headers.get(HEADER_LENGTH));
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(headerLength + 2 * 40);
  });

  it("answers Triton's classification extension, in JSON or binary", async () => {
    const body = inferBody("grey28", ref.dims, ref.input, {
      outputs: [{ name: "probabilities", parameters: { classification: 3 } }, { name: "logits" }],
    });
    const reply = (await (await postJson(app, "/v2/models/grey28/infer", body)).json()) as InferReply;
    const classes = reply.outputs[0]!;
    expect(classes).toMatchObject({ name: "probabilities", datatype: "BYTES", shape: [3, 3] });
    const logits = reply.outputs[1]!.data as number[];
    const labels = entryOf("grey28").labels;
    for (let row = 0; row < 3; row++) {
      const strings = (classes.data as unknown as string[]).slice(row * 3, row * 3 + 3);
      const parsed = strings.map((s) => s.split(":"));
      const best = logits.slice(row * 10, row * 10 + 10).reduce((bi, v, i, a) => (v > a[bi]! ? i : bi), 0);
      expect(Number(parsed[0]![1])).toBe(best);
      expect(parsed[0]![2]).toBe(labels[best]);
      const values = parsed.map((p) => Number(p[0]));
      expect(values).toEqual([...values].sort((a, b) => b - a));
    }
    const bin = await postJson(
      app,
      "/v2/models/grey28/infer",
      inferBody("grey28", [1, 1, 28, 28], ref.input.slice(0, 784), {
        outputs: [{ name: "logits", parameters: { classification: 2, binary_data: true } }],
      }),
    );
    const headerLength = Number(bin.headers.get(HEADER_LENGTH));
    const bytes = new Uint8Array(await bin.arrayBuffer());
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(0, headerLength))) as InferReply;
    expect(header.outputs[0]).toMatchObject({ name: "logits", datatype: "BYTES", shape: [1, 2] });
    const view = new DataView(bytes.buffer, headerLength);
    const first = view.getUint32(0, true);
    const s0 = new TextDecoder().decode(bytes.subarray(headerLength + 4, headerLength + 4 + first));
    expect(s0).toMatch(/^-?\d+\.\d{6}:\d:.+$/);
    expect(header.outputs[0]!.parameters!.binary_data_size).toBe(bytes.length - headerLength);
  });

  it("takes a gzip- or deflate-compressed body", async () => {
    const json = JSON.stringify(inferBody("grey28", [1, 1, 28, 28], ref.input.slice(0, 784)));
    const plain = await (await postJson(app, "/v2/models/grey28/infer", JSON.parse(json))).json();
    for (const encoding of ["gzip", "deflate"] as const) {
      const body = new Uint8Array(
        await new Response(new Blob([json]).stream().pipeThrough(new CompressionStream(encoding))).arrayBuffer(),
      );
      const res = await app.request("/v2/models/grey28/infer", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Content-Encoding": encoding },
        body,
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(plain);
    }
  });

  it("names the model and times the phases in headers", async () => {
    const res = await postJson(
      app,
      "/v2/models/rgb32/infer",
      inferBody("rgb32", [1, 3, 32, 32], new Array(3 * 32 * 32).fill(0)),
    );
    expect(res.headers.get("X-Model-Name")).toBe("rgb32");
    expect(res.headers.get("X-Model-Version")).toBe(entryOf("rgb32").version);
    const timing = res.headers.get("Server-Timing")!;
    for (const phase of ["decode", "inference", "total"]) expect(timing).toMatch(new RegExp(`${phase};dur=\\d`));
  });
});

const TOLERANCE = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("parity with onnxruntime-node: the Worker's outputs equal it within 1e-4", () => {
  for (const ref of fixtures.references) {
    it(`${ref.model}, batch ${ref.dims[0]}`, async () => {
      const res = await postJson(app, `/v2/models/${ref.model}/infer`, inferBody(ref.model, ref.dims, ref.input));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
      const logits = body.outputs.find((o) => o.name === "logits")!;
      const probabilities = body.outputs.find((o) => o.name === "probabilities")!;
      expect(logits.shape).toEqual([
        ref.dims[0],
        fixtures.manifest.models.find((m) => m.name === ref.model)!.labels.length,
      ]);
      expect(maxAbsDiff(logits.data, ref.logits)).toBeLessThan(TOLERANCE);
      expect(maxAbsDiff(probabilities.data, ref.probabilities)).toBeLessThan(TOLERANCE);
    });
  }
});
