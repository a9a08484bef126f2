// /openapi.json's document is valid OpenAPI 3.1, checked by an OpenAPI validator in Node; the
// validator refuses a broken copy, so the check can fail. (openapi.test.ts, in workerd, calls every
// route it lists and checks the answers against it.)
import { compileErrors, validate } from "@readme/openapi-parser";
import { describe, expect, it } from "vitest";
import { buildOpenApiDocument } from "../../src/api/openapi.ts";

// biome-ignore lint/suspicious/noExplicitAny: the document is walked by path, and the assertions check every value read
type Json = Record<string, any>;
const document = buildOpenApiDocument() as Json;

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1", async () => {
    expect(document.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(document) as never);
    expect(result.valid ? "" : compileErrors(result)).toBe("");
    expect(result.valid).toBe(true);
  });

  it("is refused by the validator when broken", async () => {
    const broken = structuredClone(document);
    broken.paths["/v2"].get.responses = "none";
    delete broken.info;
    const result = await validate(broken as never);
    expect(result.valid).toBe(false);
  });

  it("describes /v1 and /v2 only, each operation with an id of its own, a success and the error shape", () => {
    const operations = Object.entries(document.paths as Json).flatMap(([path, item]) =>
      Object.entries(item as Json).map(([method, op]) => ({ path, method, op: op as Json })),
    );
    expect(operations.length).toBeGreaterThan(20);
    for (const { path, op } of operations) {
      expect(path).toMatch(/^\/v[12](\/|$)/);
      const statuses = Object.keys(op.responses);
      expect(
        statuses.some((s) => s.startsWith("2")),
        `${path} has a success`,
      ).toBe(true);
      expect(op.responses["500"].content["application/json"].schema.required).toEqual(["error"]);
    }
    const ids = operations.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("states the admin routes' bearer token and the settings patch's ranges", () => {
    expect(document.paths["/v1/report"].get.security).toEqual([{ adminToken: [] }]);
    const patch = document.paths["/v1/config"].patch.requestBody.content["application/json"].schema;
    expect(patch.additionalProperties).toBe(false);
    expect(JSON.stringify(patch.properties.studentPercent)).toContain('"maximum":100');
    expect(Object.keys(patch.properties)).toContain("canary");
  });
});
