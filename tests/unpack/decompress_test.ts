import { assertEquals, assertMatch } from "../support/assert.ts";
import assertStrict from "node:assert/strict";
import zlib from "node:zlib";
import { packTar } from "modern-tar";
import { decompress, sniffFormat } from "../../src/unpack/decompress.ts";
import { ArchiveError } from "../../src/errors.ts";
import { streamOf } from "../support/helpers.ts";

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const tar = await packTar([{ header: { name: "python/a.txt", size: 5 }, body: "hello" }]);

Deno.test("decompress picks gzip, zstd and plain tar by magic bytes, not by name", async () => {
  const gz = zlib.gzipSync(tar);
  const zst = zlib.zstdCompressSync(tar);
  for (const [bytes, format] of [[gz, "gzip"], [zst, "zstd"], [tar, "tar"]] as const) {
    const out = await decompress(streamOf(new Uint8Array(bytes), 7), "archive.tar.gz");
    assertEquals(out.format, format);
    assertEquals(await collect(out.stream), tar);
  }
});

Deno.test("decompress reads zstd frames written with a 2 GiB window (--long=31)", async () => {
  const zst = zlib.zstdCompressSync(tar, {
    params: {
      [zlib.constants.ZSTD_c_windowLog]: 31,
      [zlib.constants.ZSTD_c_enableLongDistanceMatching]: 1,
    },
  });
  const out = await decompress(streamOf(new Uint8Array(zst), 1000), "long.tar.zst");
  assertEquals(await collect(out.stream), tar);
});

Deno.test("decompress rejects xz, bzip2, zip and empty input with the archive's name", async () => {
  const cases: [number[], RegExp][] = [
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1], /x\.tar: xz is not supported/],
    [[0x42, 0x5a, 0x68, 0x39], /x\.tar: bzip2 is not supported/],
    [[0x50, 0x4b, 0x03, 0x04], /x\.tar: zip is not supported/],
    [[], /x\.tar: it is empty/],
  ];
  for (const [bytes, pattern] of cases) {
    await assertStrict.rejects(decompress(streamOf(new Uint8Array(bytes), 7), "x.tar"), (err) => {
      assertStrict.ok(err instanceof ArchiveError);
      assertMatch((err as Error).message, pattern);
      return true;
    });
  }
});

Deno.test("decompress surfaces a bad gzip CRC and a corrupt zstd frame as stream errors", async () => {
  const gz = new Uint8Array(zlib.gzipSync(tar));
  gz[gz.length - 6] ^= 0xff; // inside the CRC32 trailer
  const bad = await decompress(streamOf(gz, 7), "bad.tar.gz");
  await assertStrict.rejects(collect(bad.stream));
  const zst = new Uint8Array(zlib.zstdCompressSync(tar));
  zst.fill(0x55, 8, zst.length - 4);
  const corrupt = await decompress(streamOf(zst, 7), "bad.tar.zst");
  await assertStrict.rejects(collect(corrupt.stream));
});

Deno.test("decompress rejects a flipped byte anywhere in a zstd stream, its checksum included", async () => {
  // Deno 2.9's decompressor throws most of these from a later tick instead of emitting
  // 'error': uncaught, they ended the process and left the staging folder behind.
  const data = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
  const zst = new Uint8Array(zlib.zstdCompressSync(data, {
    params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 },
  }));
  for (const at of [100, zst.length >> 1, zst.length - 1000, zst.length - 10, zst.length - 2]) {
    const bytes = zst.slice();
    bytes[at] ^= 0xff;
    const out = await decompress(streamOf(bytes, 64 * 1024), "flipped.tar.zst");
    await assertStrict.rejects(collect(out.stream), /zstd/i, `byte ${at}`);
  }
  // And a good stream still reads after the corrupt ones.
  const good = await decompress(streamOf(zst, 64 * 1024), "good.tar.zst");
  assertEquals((await collect(good.stream)).length, data.length);
});

Deno.test("two zstd streams read at once each get their own error or bytes", async () => {
  // The reclaimed error must reach the stream that failed, not the one that wrote last:
  // handed to the other one, the failed stream's write never settled (a hang).
  const data = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
  const zst = new Uint8Array(zlib.zstdCompressSync(data, {
    params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 },
  }));
  for (let round = 0; round < 5; round++) {
    const bad = zst.slice();
    bad[(zst.length >> 1) + round * 97] ^= 0xff;
    const [a, b] = await Promise.all([
      decompress(streamOf(bad, 16 * 1024), "bad.tar.zst"),
      decompress(streamOf(zst, 16 * 1024), "good.tar.zst"),
    ]);
    const [badRead, goodRead] = await Promise.allSettled([collect(a.stream), collect(b.stream)]);
    assertEquals(badRead.status, "rejected", `round ${round}`);
    assertEquals(goodRead.status === "fulfilled" && goodRead.value.length, data.length);
  }
});

Deno.test("sniffFormat treats unknown bytes as tar", () => {
  assertEquals(sniffFormat(new Uint8Array([1, 2, 3])), "tar");
  assertEquals(sniffFormat(new Uint8Array([0x1f, 0x8b])), "gzip");
});

Deno.test("decompress reads a multi-frame zstd stream of several MiB to the end", async () => {
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7919) % 251);
  const frames = [
    zlib.zstdCompressSync(big.subarray(0, 1 << 20)),
    zlib.zstdCompressSync(big.subarray(1 << 20)),
  ];
  const bytes = new Uint8Array(frames[0].length + frames[1].length);
  bytes.set(frames[0]);
  bytes.set(frames[1], frames[0].length);
  const out = await decompress(streamOf(bytes, 65536), "multi.tar.zst");
  assertEquals((await collect(out.stream)).length, big.length);
});

Deno.test("decompress holds a zstd bomb to a few chunks while the reader waits", async () => {
  const frame = zlib.zstdCompressSync(new Uint8Array(64 * 1024 * 1024));
  const bomb = new Uint8Array(frame.length * 8); // 8 frames: 512 MiB of zeros
  for (let i = 0; i < 8; i++) bomb.set(frame, i * frame.length);
  const out = await decompress(streamOf(bomb, 65536), "bomb.tar.zst");
  const reader = out.stream.getReader();
  await reader.read();
  const before = Deno.memoryUsage().rss;
  await new Promise((resolve) => setTimeout(resolve, 300));
  const grown = Deno.memoryUsage().rss - before;
  await reader.cancel();
  assertStrict.ok(grown < 64 * 1024 * 1024, `grew ${grown} bytes while nobody read`);
});
