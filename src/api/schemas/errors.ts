// The one error shape every route answers with (http/errors.ts, app.ts's onError).
import * as z from "zod";

export const ErrorBody = z.looseObject({
  error: z.string().describe("what is wrong, naming the field or value"),
  detail: z.string().optional().describe("for the admin only: what is misconfigured or broken"),
});
