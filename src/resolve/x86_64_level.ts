/**
 * Which x86-64 micro-architecture level to install. The baseline (`x86_64`, level 1)
 * by default, as uv does: PBS's v2–v4 builds crash on CPUs without those instructions
 * (PBS advises against v4 in production), and images built on one machine run on
 * others. `--x86-64-level auto|1|2|3|4` or `PYPRIME_X86_64_LEVEL` picks otherwise;
 * `auto` is the highest level this CPU supports. A key naming a level
 * (`cpython-3.14-linux-x86_64_v3-gnu`) gets exactly that level whatever is set here.
 *
 * @module
 */
import { envValue } from "../env.ts";
import { type Platform, PlatformError } from "./platform.ts";

/** `auto` or a level number, 1 (baseline) to 4. */
export type X86_64Level = "auto" | 1 | 2 | 3 | 4;

/**
 * The level asked for: `flag`, else `PYPRIME_X86_64_LEVEL`, else 1. Throws a usage
 * `PlatformError` (exit 2) for anything but `auto`, `1`–`4` or `v1`–`v4`.
 *
 * @example
 * ```ts
 * x86_64LevelSetting("3"); // 3
 * ```
 */
export function x86_64LevelSetting(flag?: string): X86_64Level {
  const fromFlag = flag !== undefined;
  const text = (flag ?? envValue("PYPRIME_X86_64_LEVEL") ?? "1").trim().toLowerCase();
  if (text === "auto") return "auto";
  const m = /^v?([1-4])$/.exec(text);
  if (m) return Number(m[1]) as 1 | 2 | 3 | 4;
  const where = fromFlag ? "--x86-64-level" : "PYPRIME_X86_64_LEVEL";
  throw new PlatformError(`Invalid ${where} ${JSON.stringify(text)}: not auto or 1-4`, {
    hint: "use auto (this CPU's best), 1 (baseline x86_64, the default), 2, 3 or 4",
    exitCode: 2,
  });
}

/**
 * `platform` with its x86-64 level set as `level` says: the detected one for `auto`,
 * else the given level. Other architectures are returned unchanged.
 *
 * @example
 * ```ts
 * withX86_64Level({ os: "linux", arch: "x86_64", archVariant: "v4", libc: "gnu" }, 1);
 * // { os: "linux", arch: "x86_64", libc: "gnu" }
 * ```
 */
export function withX86_64Level(platform: Platform, level: X86_64Level): Platform {
  if (level === "auto" || platform.arch !== "x86_64") return platform;
  const { archVariant: _, ...rest } = platform;
  return level === 1 ? rest : { ...rest, archVariant: `v${level}` };
}
