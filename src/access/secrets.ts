// The Worker's own secrets and what makes one long enough. A short admin token can be guessed (it
// opens the report, the split, the canary and the API keys), so the Worker refuses to start with one.

/** Fewest characters of ADMIN_TOKEN and CLIENT_ID_SECRET: 32 (scripts/start.ts writes 43). */
export const MIN_SECRET_LENGTH = 32;

/** Why a set secret is unusable; undefined when it is fine or unset. */
export function secretProblem(name: string, value: string | undefined): string | undefined {
  if (!value || value.length >= MIN_SECRET_LENGTH) return undefined;
  return `${name} is ${value.length} characters long; it must have at least ${MIN_SECRET_LENGTH} (e.g. \`openssl rand -base64 32\`), so that it cannot be guessed`;
}

export interface SecretBindings {
  ADMIN_TOKEN?: string;
  /** Signs the ids the Worker issues to clients (routing/client.ts); default: derived from ADMIN_TOKEN. */
  CLIENT_ID_SECRET?: string;
}

/** Every problem with the secrets, for the Worker's start-up. */
export const secretProblems = (env: SecretBindings): string[] =>
  [secretProblem("ADMIN_TOKEN", env.ADMIN_TOKEN), secretProblem("CLIENT_ID_SECRET", env.CLIENT_ID_SECRET)].filter(
    (p) => p !== undefined,
  );

/** The admin token when it is set and long enough; a short one is logged and treated as none. */
export function usableAdminToken(env: SecretBindings): string | undefined {
  const problem = secretProblem("ADMIN_TOKEN", env.ADMIN_TOKEN);
  if (problem) {
    console.error(`admin access disabled: ${problem}`);
    return undefined;
  }
  return env.ADMIN_TOKEN || undefined;
}

/** The key that signs client ids: CLIENT_ID_SECRET, else the admin token; undefined without either. */
export function clientIdSecret(env: SecretBindings): string | undefined {
  if (env.CLIENT_ID_SECRET)
    return secretProblem("CLIENT_ID_SECRET", env.CLIENT_ID_SECRET) ? undefined : env.CLIENT_ID_SECRET;
  return usableAdminToken(env);
}
