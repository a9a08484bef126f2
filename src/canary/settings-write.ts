// The one write path of the settings table, for every writer (PATCH /v1/config, the dashboard's form):
// routing and canary settings change together or not at all, and studentPercent (the split) is
// refused while a canary runs, since the canary owns it then (state.ts assertSplitFree).
import type { D1Database } from "@cloudflare/workers-types";
import { type SettingKey, refreshSettings, routingSettingValues, settingStatements } from "../routing/settings.ts";
import { type CanaryPatch, canarySettingValues } from "./settings.ts";
import { assertSplitFree } from "./state.ts";

/** Writes the patches in one batch, then makes this isolate route on them at once. */
export async function applySettingsPatch(
  db: D1Database,
  routing: Partial<Record<SettingKey, number | null>>,
  canary: CanaryPatch = {},
): Promise<void> {
  if (routing.studentPercent !== undefined) await assertSplitFree(db);
  await db.batch(settingStatements(db, { ...routingSettingValues(routing), ...canarySettingValues(canary) }));
  await refreshSettings(db);
}
