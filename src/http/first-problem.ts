// The first problem of a failed schema parse, as the sentence that goes into a 400's {"error"}: the
// schemas write each of their messages as a whole sentence naming the field.
import type { z } from "zod";

export const firstProblem = (error: z.ZodError): string => error.issues[0]?.message ?? "invalid input";
