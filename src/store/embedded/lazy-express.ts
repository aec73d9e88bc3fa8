/**
 * Two packages express-pouchdb brings in at every store start, for work most requests never do:
 *
 * - **side-channel**, which qs (express's query-string parser) requires to keep a few objects
 *   aside while it parses. Its implementation loads get-intrinsic and about forty small modules
 *   with it: about 35 ms of the store's start on this project's machines. `sideChannel` below is
 *   the same thing, on the WeakMap and Map the package itself picks: `set`, `get`, `has`,
 *   `delete` and `assert` with the same answers. It is put in the require cache where each copy
 *   of qs would find the package.
 * - **multiparty**, which express-pouchdb's document routes use only for a form upload of
 *   attachments (`POST /db/doc`, multipart/form-data): about 15 ms. A stand-in loads it at the
 *   first use of any of its exports. Its `Form` also removes the files multiparty writes to the
 *   temp folder for an upload once the request's response is done: express-pouchdb reads them
 *   and left them there, one file per attachment ever uploaded.
 *
 * A layout where a package cannot be found keeps loading as before.
 */
import { unlink } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { loadReal, seed } from './lazy-http.ts';

interface Channel {
  assert(key: unknown): void;
  delete(key: unknown): boolean;
  get(key: unknown): unknown;
  has(key: unknown): boolean;
  set(key: unknown, value: unknown): void;
}

const isObjectKey = (key: unknown): key is object => (typeof key === 'object' && key !== null) || typeof key === 'function';

/** side-channel's `getSideChannel`: objects are held weakly, anything else in a Map. */
export function sideChannel(): Channel {
  let weak: WeakMap<object, unknown> | undefined;
  let strong: Map<unknown, unknown> | undefined;
  const channel: Channel = {
    assert(key) {
      if (!channel.has(key)) {
        const desc = isObjectKey(key) ? 'the given object key' : typeof key === 'string' ? `'${key}'` : String(key);
        throw new TypeError(`Side channel does not contain ${desc}`);
      }
    },
    delete(key) {
      return isObjectKey(key) ? weak !== undefined && weak.delete(key) : strong !== undefined && strong.delete(key);
    },
    get(key) {
      return isObjectKey(key) ? weak?.get(key) : strong?.get(key);
    },
    has(key) {
      return isObjectKey(key) ? weak !== undefined && weak.has(key) : strong !== undefined && strong.has(key);
    },
    set(key, value) {
      if (isObjectKey(key)) (weak ??= new WeakMap()).set(key, value);
      else (strong ??= new Map()).set(key, value);
    },
  };
  return channel;
}

/** Where `from` (a package) resolves `name`, or undefined. */
function resolveFrom(require: NodeJS.Require, from: string, name: string): string | undefined {
  try { return createRequire(require.resolve(from)).resolve(name); } catch { return undefined; }
}

/** Call before express-pouchdb is loaded. */
export function deferExpressExtras(require: NodeJS.Require): void {
  const express = resolveFrom(require, 'express-pouchdb/package.json', 'express/package.json');
  const qsCopies = new Set<string>();
  for (const from of [express, express && resolveFrom(require, express, 'body-parser/package.json')]) {
    const qs = from && resolveFrom(require, from, 'qs');
    if (qs) qsCopies.add(qs);
  }
  for (const qs of qsCopies) {
    const file = resolveFrom(require, qs, 'side-channel');
    if (file && !require.cache[file]) seed(file, sideChannel);
  }
  const multiparty = resolveFrom(require, 'express-pouchdb/package.json', 'multiparty');
  if (multiparty && !require.cache[multiparty]) {
    let real: Record<PropertyKey, unknown> | undefined;
    const load = () => (real ??= loadReal(require, multiparty) as unknown as Record<PropertyKey, unknown>);
    let form: unknown;
    const Form = () => (form ??= formRemovingItsFiles(load().Form as FormClass));
    seed(multiparty, new Proxy({}, {
      get: (_t, p) => (p === 'Form' ? Form() : load()[p]),
      has: (_t, p) => p in load(),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_t, p) => {
        const d = Reflect.getOwnPropertyDescriptor(load(), p);
        return d && { ...d, configurable: true, ...(p === 'Form' ? { value: Form() } : {}) };
      },
    }));
  }
}

interface UploadForm {
  on(event: 'file', listener: (name: string, file: { path: string }) => void): UploadForm;
  parse(req: IncomingMessage & { res?: ServerResponse }, ...rest: unknown[]): unknown;
}
type FormClass = new (...args: unknown[]) => UploadForm;

/** multiparty's Form, whose files are removed when the response to the request it parses is done. */
function formRemovingItsFiles(Real: FormClass): FormClass {
  const Form = function (...args: unknown[]) {
    const form = new Real(...args);
    const files: string[] = [];
    form.on('file', (_name, file) => { files.push(file.path); });
    const parse = form.parse.bind(form);
    form.parse = (req, ...rest) => {
      req.res?.once('close', () => { for (const f of files.splice(0)) unlink(f, () => undefined); });
      return parse(req, ...rest);
    };
    return form;
  } as unknown as FormClass;
  Object.setPrototypeOf(Form, Real);
  Form.prototype = Real.prototype;
  return Form;
}
