/**
 * The floor of the thread-pool design: node:http plus two worker threads running a trivial
 * handler, messages batched once per turn of the event loop each way, and nothing of the
 * runtime around it (no matching, gate, records, timeouts or fault handling). What the runtime
 * can at best reach with a hop to a thread on this machine; `npm run bench` runs it next to the
 * runtime, `npm run bench:transport` compares its transports.
 *   port     MessagePorts, as the thread pool; answers each request with its outcome (as ?wait=true)
 *   port202  the same, answering 202 at once (as fire-and-forget); GET /_lively/status says how
 *            many were fired and completed, as the runtime's does, for processed/s
 *   ring     as port, over a byte ring per direction in a SharedArrayBuffer, woken with
 *            Atomics.waitAsync only when the reader waits (no structured clone, no MessagePort)
 * Served by bench/target.ts; the threads run this file bundled to plain JavaScript.
 */
import http from 'node:http';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, isMainThread, workerData, type MessagePort } from 'node:worker_threads';
import * as esbuild from 'esbuild';

export type FloorMode = 'port' | 'port202' | 'ring';

/** Atomics.waitAsync (in node since 16; its type is not in the ES2022 lib this project compiles against). */
type WaitAsync = (a: Int32Array, index: number, value: number) => { async: false; value: string } | { async: true; value: Promise<string> };

/** A single-producer single-consumer ring of length-prefixed UTF-8 records: [head, tail, seq] then data. */
class Ring {
  private readonly ctrl: Int32Array;
  private readonly buf: Buffer;
  constructor(readonly sab: SharedArrayBuffer) {
    this.ctrl = new Int32Array(sab, 0, 4);
    this.buf = Buffer.from(sab, 16);
  }

  static create(bytes: number): Ring { return new Ring(new SharedArrayBuffer(16 + bytes)); }

  write(text: string): boolean {
    const need = 8 + text.length * 3;
    const cap = this.buf.length;
    let head = this.ctrl[0]!;
    const tail = Atomics.load(this.ctrl, 1);
    if (head >= tail) {
      if (cap - head < need) {
        if (tail <= need) return false;
        if (cap - head >= 4) this.buf.writeInt32LE(-1, head);
        head = 0;
      }
    } else if (tail - head <= need) return false;
    const n = this.buf.write(text, head + 4, 'utf8');
    this.buf.writeInt32LE(n, head);
    Atomics.store(this.ctrl, 0, (head + 4 + n + 3) & ~3);
    Atomics.add(this.ctrl, 2, 1);
    Atomics.notify(this.ctrl, 2);
    return true;
  }

  read(): string | undefined {
    let tail = this.ctrl[1]!;
    const head = Atomics.load(this.ctrl, 0);
    if (tail === head) return undefined;
    if (tail === this.buf.length || this.buf.readInt32LE(tail) === -1) {
      tail = 0;
      if (head === 0) { Atomics.store(this.ctrl, 1, 0); return undefined; }
    }
    const len = this.buf.readInt32LE(tail);
    const text = this.buf.toString('utf8', tail + 4, tail + 4 + len);
    Atomics.store(this.ctrl, 1, (tail + 4 + len + 3) & ~3);
    return text;
  }

  /** Hands every record to `fn` as it comes, sleeping (without blocking the event loop) while there is none. */
  async follow(fn: (text: string) => void): Promise<never> {
    for (;;) {
      const seq = Atomics.load(this.ctrl, 2);
      let text;
      while ((text = this.read()) !== undefined) fn(text);
      const w = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(this.ctrl, 2, seq);
      if (w.async) await w.value; else await new Promise((r) => setImmediate(r));
    }
  }
}

interface Link { send(text: string): boolean; listen(fn: (text: string) => void): void }

function portLink(port: MessagePort): Link {
  return { send: (t) => { port.postMessage(t); return true; }, listen: (fn) => port.on('message', fn) };
}

function ringLink(out: Ring, inp: Ring): Link {
  return { send: (t) => out.write(t), listen: (fn) => void inp.follow(fn) };
}

/** This file as plain JavaScript, for the worker threads (which do not load TypeScript). */
function buildThreadEntry(): string {
  const self = fileURLToPath(import.meta.url);
  const outfile = path.join(path.dirname(self), 'results', 'floor-thread.mjs');
  mkdirSync(path.dirname(outfile), { recursive: true });
  esbuild.buildSync({ entryPoints: [self], outfile, bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'silent' });
  return outfile;
}

export function floorServer(mode: FloorMode): http.Server {
  const threadEntry = buildThreadEntry();
  const waiting = new Map<number, http.ServerResponse>();
  const forget = mode === 'port202';
  let fired = 0;
  let completed = 0;
  const answer = (text: string): void => {
    for (const o of JSON.parse(text) as Array<{ id: number }>) {
      completed++;
      if (forget) continue;
      const res = waiting.get(o.id)!;
      waiting.delete(o.id);
      const body = `{"ok":true,"outcomes":[${JSON.stringify(o)}]}`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  };
  const links: Link[] = [];
  for (let i = 0; i < 2; i++) {
    if (mode === 'ring') {
      const down = Ring.create(1 << 22), up = Ring.create(1 << 22);
      new Worker(threadEntry, { workerData: { floor: mode, down: down.sab, up: up.sab } });
      links.push(ringLink(down, up));
    } else {
      const { port1, port2 } = new MessageChannel();
      new Worker(threadEntry, { workerData: { floor: mode, port: port2 }, transferList: [port2] });
      links.push(portLink(port1));
    }
    links[i]!.listen(answer);
  }
  let pending: string[] = [];
  let scheduled = false;
  let next = 0;
  const flush = (): void => {
    scheduled = false;
    const per = pending.length < 8 ? pending.length : Math.ceil(pending.length / 2);
    while (pending.length > 0) {
      const part = pending.splice(0, per);
      if (!links[next++ % 2]!.send(part.join('\n'))) throw new Error('ring full');
    }
  };
  return http.createServer((req, res) => {
    req.resume();
    if (req.url === '/_lively/status') { res.end(JSON.stringify({ activations: { fired, completed } })); return; }
    const id = ++fired;
    if (forget) { res.writeHead(202, { 'content-type': 'application/json' }); res.end('{"ok":true}'); } else waiting.set(id, res);
    pending.push(JSON.stringify({ id, activation: `a-${id.toString(36)}`, event: 'e', worker: 'w', trigger: 'http', method: req.method, path: req.url, arguments: {}, parameters: {}, request: { query: {}, headers: req.headers } }));
    if (!scheduled) { scheduled = true; setImmediate(flush); }
  });
}

/** Inside a worker thread: parse each message, run a trivial async handler, send outcomes back once per turn. */
function threadMain(data: { floor: FloorMode; port?: MessagePort; down?: SharedArrayBuffer; up?: SharedArrayBuffer }): void {
  let link: Link;
  if (data.floor === 'ring') {
    // Atomics.waitAsync holds no handle: something must keep the thread alive.
    setInterval(() => {}, 1 << 30);
    link = ringLink(new Ring(data.up!), new Ring(data.down!));
  } else {
    link = portLink(data.port!);
  }
  const handler = async (m: { parameters: { n?: number } }) => ({ ok: true, n: m.parameters.n ?? null });
  let out: unknown[] = [];
  let scheduled = false;
  const flush = (): void => { scheduled = false; const text = JSON.stringify(out); out = []; if (!link.send(text)) throw new Error('ring full'); };
  link.listen((text) => {
    for (const line of text.split('\n')) {
      const m = JSON.parse(line) as { id: number; worker: string; parameters: { n?: number } };
      void handler(m).then((result) => {
        out.push({ id: m.id, worker: m.worker, status: 'ok', result, logs: [] });
        if (!scheduled) { scheduled = true; setImmediate(flush); }
      });
    }
  });
}

if (!isMainThread && (workerData as { floor?: FloorMode } | null)?.floor) threadMain(workerData);
