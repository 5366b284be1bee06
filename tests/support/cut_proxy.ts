/**
 * A TCP relay in front of a real server that cuts the first connection once it has
 * relayed a number of response bytes: a cable pulled mid-download. Everything HTTP
 * (status, ETag, ranges, `If-Range`) stays the real server's; only the cut is ours.
 *
 * @module
 */

/** A running {@link startCutProxy}. */
export interface CutProxy {
  /** The relay's port on 127.0.0.1. */
  port: number;
  /** How many connections were cut. */
  cuts(): number;
  /** Stops listening and closes every relayed connection. */
  close(): Promise<void>;
}

/** Options of {@link startCutProxy}. */
export interface CutOptions {
  /** The port of the real server on 127.0.0.1. */
  target: number;
  /** Cut a connection after relaying this many bytes from the server. */
  cutAfter: number;
  /** How many connections are cut (the first ones); default 1. */
  times?: number;
  /** Runs right after a cut, before the next connection is relayed. */
  onCut?: () => Promise<void>;
}

/** Starts the relay; see the module doc. */
export function startCutProxy(options: CutOptions): CutProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let cuts = 0;
  let pendingCut: Promise<void> = Promise.resolve();
  const close = (conn: Deno.Conn) => {
    if (!open.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // a finished pipe closed it already
    }
  };

  async function relay(client: Deno.Conn): Promise<void> {
    await pendingCut;
    const server = await Deno.connect({ hostname: "127.0.0.1", port: options.target });
    open.add(client);
    open.add(server);
    const cutThis = cuts < (options.times ?? 1);
    const upstream = client.readable.pipeTo(server.writable).catch(() => {});
    let relayed = 0;
    const reader = server.readable.getReader();
    const writer = client.writable.getWriter();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const room = cutThis ? options.cutAfter - relayed : value.byteLength;
        await writer.write(value.subarray(0, Math.max(0, Math.min(room, value.byteLength))));
        relayed += value.byteLength;
        if (cutThis && relayed >= options.cutAfter) {
          cuts++;
          let done!: () => void;
          pendingCut = new Promise((r) => done = r);
          close(client);
          close(server);
          await options.onCut?.();
          done();
          break;
        }
      }
    } catch {
      // the other side went away
    } finally {
      close(client);
      close(server);
      await upstream;
    }
  }

  const accepting = (async () => {
    for await (const conn of listener) {
      const task = relay(conn).finally(() => tasks.delete(task));
      tasks.add(task);
    }
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    cuts: () => cuts,
    close: async () => {
      listener.close();
      for (const conn of [...open]) close(conn);
      await accepting;
      await Promise.all(tasks);
    },
  };
}
