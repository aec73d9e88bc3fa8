/**
 * A TCP relay in front of the suite's store, for network faults: `freeze()` makes every open
 * connection go silent without closing (a dropped link nobody noticed), `cut()` closes them
 * and refuses new ones until `restore()`. The store behind it is the real one.
 */
import net from 'node:net';

export interface TcpProxy {
  /** the store URL (credentials kept) through the relay. */
  url: string;
  freeze(): void;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(storeUrl: string): Promise<TcpProxy> {
  const target = new URL(storeUrl);
  const open = new Set<{ client: net.Socket; upstream: net.Socket; frozen: boolean }>();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) { client.destroy(); return; }
    const upstream = net.connect(Number(target.port), target.hostname);
    const link = { client, upstream, frozen: false };
    open.add(link);
    client.on('data', (d) => { if (!link.frozen) upstream.write(d); });
    upstream.on('data', (d) => { if (!link.frozen) client.write(d); });
    const end = () => { open.delete(link); client.destroy(); upstream.destroy(); };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(storeUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString().replace(/\/$/, ''),
    freeze: () => { for (const l of open) l.frozen = true; },
    cut: () => { refusing = true; for (const l of [...open]) { l.client.destroy(); l.upstream.destroy(); } },
    restore: () => { refusing = false; },
    close: async () => {
      for (const l of [...open]) { l.client.destroy(); l.upstream.destroy(); }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
