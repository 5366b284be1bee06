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
import { debianPython } from "../../scripts/debian_python.ts";

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
 * The interpreter fixtures are built from, when one is chosen: `PYPRIME_TEST_PYTHON`
 * when set; else pyenv's 3.12.1 when `PYENV_ROOT` names a pyenv that has it (a shared
 * build, so the relocated libpython gets checked too). `$HOME/.pyenv` is never looked
 * at: a fresh machine has no pyenv. With neither, {@link fixtures} builds from Debian
 * sid's CPython 3.13 laid out as a PBS tree (`scripts/debian_python.ts`): Debian's own
 * `/usr/bin/python3` splits its stdlib across packages (no test suite, dist-packages,
 * a multiarch sysconfig module), which a PBS archive never does.
 */
export function sourcePython(): string | undefined {
  const chosen = Deno.env.get("PYPRIME_TEST_PYTHON");
  if (chosen) return chosen;
  const pyenv = Deno.env.get("PYENV_ROOT");
  if (!pyenv) return undefined;
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
    const python = sourcePython() ?? (await debianPython({ minor: "3.13", suite: "sid" })).python;
    const set = await buildFixtures({ python, outDir: FIXTURE_CACHE });
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

const debianBuilds = new Map<string, Promise<FixtureSet>>();

/**
 * PBS-shaped archives of a real CPython this machine lacks, built from a Debian suite's
 * binary packages (`scripts/debian_python.ts`: sid has 3.14 and 3.15, trixie and sid two
 * 3.13 patch releases). The Debian trees are cached outside the clone; the archives go
 * to the fixture cache like the others.
 *
 * @example
 * ```ts
 * const fx314 = await debianFixtures("3.14");
 * ```
 */
export function debianFixtures(minor: string, suite = "sid"): Promise<FixtureSet> {
  const id = `${suite}/${minor}`;
  let built = debianBuilds.get(id);
  if (built === undefined) {
    built = (async () => {
      await Deno.mkdir(FIXTURE_CACHE, { recursive: true });
      const lock = await Deno.open(join(FIXTURE_CACHE, ".lock"), { create: true, write: true });
      try {
        await lock.lock(true);
        const tree = await debianPython({ minor, suite });
        return await buildFixtures({ python: tree.python, outDir: join(FIXTURE_CACHE, suite) });
      } finally {
        await lock.unlock().catch(() => {});
        lock.close();
      }
    })();
    debianBuilds.set(id, built);
  }
  return built;
}
