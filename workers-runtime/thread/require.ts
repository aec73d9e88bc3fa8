/**
 * The `require` bundled worker code calls for what the bundler left external.
 * Packages and node builtins resolve from the runtime's node_modules. Relative and absolute
 * paths are refused: static ones were already turned into attachments by the bundler, and a
 * dynamic `require(variable)` would otherwise resolve against the runtime's own files.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

export const kHelperModule = 'livelycouch/worker';

export function makeWorkerRequire(moduleRoot: string, helper: () => unknown): NodeJS.Require {
  const base = createRequire(path.join(moduleRoot, 'package.json'));
  const req = function require(id: string): unknown {
    if (typeof id !== 'string') throw new TypeError('require() needs a module name');
    if (id === kHelperModule) return helper();
    if (id.startsWith('.') || path.isAbsolute(id)) {
      throw Object.assign(new Error(`cannot require '${id}' at run time: attachments are resolved when the worker is bundled, so require them by a literal relative path`), { code: 'MODULE_NOT_FOUND' });
    }
    return base(id);
  } as NodeJS.Require;
  req.resolve = ((id: string) => base.resolve(id)) as NodeJS.RequireResolve;
  req.cache = base.cache;
  return req;
}
