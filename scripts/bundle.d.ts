// Types of scripts/bundle.js (plain JavaScript, so that bin/livelycouch.js loads it without tsx).
export declare const kDistDir: string;
export declare const kInputsFile: string;
export declare const kEntries: Readonly<Record<'cli' | 'store-server' | 'store-spawn' | 'thread-runtime', string>>;
/** Why `<root>/dist/` cannot be used as it is, or undefined when it can. */
export declare function staleReason(root: string): string | undefined;
/** `<root>/dist/store-server.js`, built again first when stale: the embedded store as users run it. */
export declare function builtStoreServer(root: string): Promise<string>;
/** Builds every bundle into `<root>/dist/`; returns the source files they were built from. */
export declare function bundle(root: string): Promise<string[]>;
/** The esbuild plugin that leaves `external` packages to node's require, each resolved from where its importer lies in node_modules. */
export declare function storeExternals(external: ReadonlySet<string>): import('esbuild').Plugin;
