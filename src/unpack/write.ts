/**
 * The small synchronous write helpers of the extraction (sync calls are several times
 * cheaper than async ones for the many small files of a stdlib).
 *
 * @module
 */

/** The number of `/` in a relative path: how deep below the destination it lies. */
export function depth(rel: string): number {
  let n = 0;
  for (let i = rel.indexOf("/"); i !== -1; i = rel.indexOf("/", i + 1)) n++;
  return n;
}

/** Whether a header date is usable as an mtime. */
export function validDate(date: Date | undefined): date is Date {
  return date !== undefined && Number.isFinite(date.getTime());
}

/** Sets atime and mtime by path; callers only pass paths they just created (no links). */
export function setMtime(path: string, mtime: Date | undefined): void {
  if (validDate(mtime)) Deno.utimeSync(path, mtime, mtime);
}

/** Writes all of `data`, looping over short writes. */
export function writeAllSync(file: Deno.FsFile, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) offset += file.writeSync(data.subarray(offset));
}
