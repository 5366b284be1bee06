/**
 * Shared test fixtures: PBS-shaped archives built once from a CPython on this machine
 * (see `scripts/build_fixtures.ts`), cached in `.cache/fixtures/` under the repo root.
 *
 * Environment:
 * - `PYPRIME_TEST_PYTHON`: the source interpreter to build from.
 * - `PYPRIME_TEST_ARCHIVE`: a genuine PBS archive, exposed as `real` so integration
 *   tests can install it too.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { buildFixtures, type FixtureSet } from "../../scripts/build_fixtures.ts";

export type { FixtureSet } from "../../scripts/build_fixtures.ts";

/** The repository root. */
export const REPO_ROOT: string = fileURLToPath(new URL("../..", import.meta.url));

/** Where fixture archives are cached between runs. */
export const FIXTURE_CACHE: string = join(REPO_ROOT, ".cache", "fixtures");

/** The fixture archives, plus an optional genuine PBS archive. */
export interface TestFixtures extends FixtureSet {
  /** Absolute path of `PYPRIME_TEST_ARCHIVE`, when set. */
  real?: string;
}

/**
 * The interpreter fixtures are built from. pyenv's 3.12.1 is preferred because it is a
 * shared build whose stdlib (without tests and site-packages) is small, so the build takes
 * a few seconds and the relocated libpython can be checked; `python3` on PATH otherwise.
 * `PYPRIME_TEST_PYTHON` wins over both.
 */
export function sourcePython(): string | undefined {
  const chosen = Deno.env.get("PYPRIME_TEST_PYTHON");
  if (chosen) return chosen;
  const pyenv = Deno.env.get("PYENV_ROOT") ?? join(Deno.env.get("HOME") ?? "/root", ".pyenv");
  const preferred = join(pyenv, "versions", "3.12.1", "bin", "python3.12");
  try {
    if (Deno.statSync(preferred).isFile) return preferred;
  } catch {
    // not installed: fall back to python3 on PATH
  }
  return undefined;
}

let building: Promise<TestFixtures> | undefined;

/**
 * Builds the fixture archives once per process and returns their paths. Parallel test
 * processes serialise on a lock file, so only the first one builds.
 *
 * @example
 * ```ts
 * const fx = await fixtures();
 * await Deno.stat(fx.gz);
 * ```
 */
export function fixtures(): Promise<TestFixtures> {
  building ??= build();
  return building;
}

async function build(): Promise<TestFixtures> {
  await Deno.mkdir(FIXTURE_CACHE, { recursive: true });
  const lock = await Deno.open(join(FIXTURE_CACHE, ".lock"), { create: true, write: true });
  try {
    await lock.lock(true);
    const set = await buildFixtures({ python: sourcePython(), outDir: FIXTURE_CACHE });
    return { ...set, real: await realArchive() };
  } finally {
    await lock.unlock().catch(() => {});
    lock.close();
  }
}

async function realArchive(): Promise<string | undefined> {
  const path = Deno.env.get("PYPRIME_TEST_ARCHIVE");
  if (!path) return undefined;
  const absolute = resolve(path);
  const info = await Deno.stat(absolute).catch(() => undefined);
  if (!info?.isFile) throw new Error(`PYPRIME_TEST_ARCHIVE=${path}: not a file`);
  return absolute;
}
