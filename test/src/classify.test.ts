// POST /v1/classify and /v1/models/{name}/classify: PNG and JPEG of any colour type and size.
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { encodeFlatGreyJpeg } from "./flat-jpeg.ts";
import { entryOf, fixtureApp, inferBody, jpegs, postJson } from "./helpers.ts";

interface Classification {
  model: { name: string; version: string };
  image: { format: string; width: number; height: number };
  predictions: { label: string; index: number; probability: number }[];
}

const app = fixtureApp();

function post(path: string, body: Uint8Array, type = "application/octet-stream") {
  return app.request(path, { method: "POST", headers: { "Content-Type": type }, body });
}
async function classify(path: string, body: Uint8Array, type?: string): Promise<Classification> {
  const res = await post(path, body, type);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Classification;
}
const byIndex = (c: Classification) => [...c.predictions].sort((a, b) => a.index - b.index).map((p) => p.probability);

/** The same grey level, 37x23, in every PNG colour type. */
function greyPngs(level: number): Record<string, Uint8Array> {
  const w = 37;
  const h = 23;
  const n = w * h;
  const fill = (channels: number, values: number[], depth = 8) => {
    const data = depth === 16 ? new Uint16Array(n * channels) : new Uint8Array(n * channels);
    for (let i = 0; i < n; i++) data.set(values, i * channels);
    return data;
  };
  return {
    grey8: encodePng({ width: w, height: h, channels: 1, depth: 8, data: fill(1, [level]) }),
    grey16: encodePng({ width: w, height: h, channels: 1, depth: 16, data: fill(1, [level * 257], 16) }),
    greyAlpha: encodePng({ width: w, height: h, channels: 2, depth: 8, data: fill(2, [level, 255]) }),
    rgb8: encodePng({ width: w, height: h, channels: 3, depth: 8, data: fill(3, [level, level, level]) }),
    rgba8: encodePng({ width: w, height: h, channels: 4, depth: 8, data: fill(4, [level, level, level, 255]) }),
    rgb16: encodePng({
      width: w,
      height: h,
      channels: 3,
      depth: 16,
      data: fill(3, [level * 257, level * 257, level * 257], 16),
    }),
    palette4: encodePng({
      width: w,
      height: h,
      channels: 1,
      depth: 4,
      palette: [
        [0, 0, 0],
        [level, level, level],
      ],
      data: new Uint8Array(Math.ceil(w / 2) * h).fill(0x11),
    }),
    interlaced: encodePng(
      { width: w, height: h, channels: 3, depth: 8, data: fill(3, [level, level, level]) },
      { interlace: "Adam7" },
    ),
  };
}

describe("classify", () => {
  it("answers the default student's top 5 with the image's format and size", async () => {
    const res = await post("/v1/classify", greyPngs(128).grey8!, "image/png");
    expect(res.headers.get("X-Model-Name")).toBe("grey28");
    expect(res.headers.get("X-Model-Version")).toBe("1");
    for (const phase of ["decode", "inference", "total"])
      expect(res.headers.get("Server-Timing")).toMatch(new RegExp(`${phase};dur=`));
    const body = (await res.json()) as Classification;
    expect(body.model).toEqual({ name: "grey28", version: "1" });
    expect(body.image).toEqual({ format: "png", width: 37, height: 23 });
    expect(body.predictions).toHaveLength(5);
    const probs = body.predictions.map((p) => p.probability);
    expect(probs).toEqual([...probs].sort((a, b) => b - a));
    expect(body.predictions[0]!.label).toBe(entryOf("grey28").labels[body.predictions[0]!.index]);
  });

  it("normalizes as the manifest says: a flat image equals infer on the normalized constant", async () => {
    const body = await classify("/v1/classify?k=10", greyPngs(128).grey8!);
    const { mean, std } = entryOf("grey28").normalization;
    const value = (128 / 255 - mean[0]!) / std[0]!;
    const infer = await postJson(
      app,
      "/v2/models/grey28/infer",
      inferBody("grey28", [1, 1, 28, 28], new Array(784).fill(value), { outputs: [{ name: "probabilities" }] }),
    );
    const expected = ((await infer.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
    byIndex(body).forEach((p, i) => {
      expect(p).toBeCloseTo(expected[i]!, 5);
    });
  });

  it("gives the same answer for every PNG colour type and bit depth of the same picture", async () => {
    const pngs = greyPngs(128);
    const reference = byIndex(await classify("/v1/classify?k=10", pngs.grey8!));
    for (const [kind, png] of Object.entries(pngs)) {
      const got = byIndex(await classify("/v1/classify?k=10", png));
      got.forEach((p, i) => {
        expect(p, kind).toBeCloseTo(reference[i]!, 5);
      });
    }
  });

  it("composites transparency over black", async () => {
    const black = byIndex(await classify("/v1/classify?k=10", greyPngs(0).grey8!));
    const n = 37 * 23;
    const clear = encodePng({
      width: 37,
      height: 23,
      channels: 4,
      depth: 8,
      data: new Uint8Array(n * 4).fill(255).map((v, i) => (i % 4 === 3 ? 0 : v)),
    });
    byIndex(await classify("/v1/classify?k=10", clear)).forEach((p, i) => {
      expect(p).toBeCloseTo(black[i]!, 5);
    });
  });

  it("decodes grey and colour JPEGs of odd sizes", async () => {
    const grey = encodeFlatGreyJpeg(33, 17, (bx, by) => (37 * bx + 71 * by + 20) % 256);
    const g = await classify("/v1/models/grey28/classify", grey, "image/jpeg");
    expect(g.image).toEqual({ format: "jpeg", width: 33, height: 17 });
    const c = await classify("/v1/models/rgb32/classify", jpegs["uniform-rgb"]!, "image/jpeg");
    expect(c.model.name).toBe("rgb32");
    expect(c.image).toEqual({ format: "jpeg", width: 41, height: 29 });
    // A flat grey JPEG and the same flat grey PNG are the same picture.
    const flatJpeg = byIndex(
      await classify(
        "/v1/classify?k=10",
        encodeFlatGreyJpeg(37, 23, () => 128),
      ),
    );
    const flatPng = byIndex(await classify("/v1/classify?k=10", greyPngs(128).grey8!));
    flatJpeg.forEach((p, i) => {
      expect(p).toBeCloseTo(flatPng[i]!, 5);
    });
  });

  it("converts between grey and RGB as the model needs", async () => {
    const colourOnGrey = await classify("/v1/models/grey28/classify", jpegs.gradient!);
    expect(colourOnGrey.predictions).toHaveLength(5);
    const greyOnColour = byIndex(await classify("/v1/models/rgb32/classify?k=10", greyPngs(90).grey8!));
    const rgbOnColour = byIndex(await classify("/v1/models/rgb32/classify?k=10", greyPngs(90).rgb8!));
    greyOnColour.forEach((p, i) => {
      expect(p).toBeCloseTo(rgbOnColour[i]!, 5);
    });
  });

  it("takes the image from a multipart form field", async () => {
    const png = greyPngs(128).grey8!;
    const raw = await classify("/v1/classify?k=10", png);
    const form = new FormData();
    form.append("note", "a text field is ignored");
    form.append("image", new File([png], "shirt.png", { type: "image/png" }));
    const res = await app.request("/v1/classify?k=10", { method: "POST", body: form });
    expect(res.status).toBe(200);
    expect(byIndex((await res.json()) as Classification)).toEqual(byIndex(raw));
    const other = new FormData();
    other.append("upload", new File([png], "x.png"));
    expect((await app.request("/v1/classify", { method: "POST", body: other })).status).toBe(200);
  });

  it("answers ?k= labels, at most the label count", async () => {
    const png = greyPngs(128).grey8!;
    expect((await classify("/v1/classify?k=3", png)).predictions).toHaveLength(3);
    expect((await classify("/v1/classify?k=1000", png)).predictions).toHaveLength(10);
  });

  it("scales large images down", async () => {
    const w = 640;
    const h = 480;
    const data = new Uint8Array(w * h * 3).map((_, i) => (i * 7) % 251);
    const body = await classify(
      "/v1/models/rgb32/classify",
      encodePng({ width: w, height: h, channels: 3, depth: 8, data }),
    );
    expect(body.image).toEqual({ format: "png", width: 640, height: 480 });
  });
});
