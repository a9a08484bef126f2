// API keys, behind the admin token, mounted at /v1:
//   POST   /v1/keys      {"name": "ci", "rights": ["compare"]}: 201 with the key, shown this once
//   GET    /v1/keys      every key: id, name, rights, when made and revoked (never the secret)
//   DELETE /v1/keys/:id  revokes a key at once (its next use answers 401)
import { Hono } from "hono";
import { ApiKeyError, createKey, listKeys, parseNewKey, revokeKey } from "../access/api-keys.ts";
import { notFound } from "../http/errors.ts";
import { adminAuth } from "../access/admin-auth.ts";
import type { AbBindings } from "../routing/setup.ts";
import { database } from "../storage/database.ts";
import { jsonBody, validated } from "./context.ts";

export function keyRoutes(): Hono<{ Bindings: AbBindings }> {
  const app = new Hono<{ Bindings: AbBindings }>();
  app.use("/keys", adminAuth());
  app.use("/keys/*", adminAuth());

  app.post("/keys", async (c) => {
    const body = await jsonBody(c, '{"name": "ci", "rights": ["compare"]}');
    return c.json(
      await createKey(
        database(c.env),
        validated(() => parseNewKey(body), ApiKeyError),
      ),
      201,
    );
  });

  app.get("/keys", async (c) => c.json({ keys: await listKeys(database(c.env)) }));

  app.delete("/keys/:id", async (c) => {
    const id = c.req.param("id");
    const key = await revokeKey(database(c.env), id);
    if (!key) throw notFound(`no API key "${id.slice(0, 60)}"`);
    return c.json(key);
  });
  return app;
}
