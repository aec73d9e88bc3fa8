#!/usr/bin/env node
// The installed command: runs the TypeScript CLI through tsx, with the flag isolated-vm needs.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
// Resolved from here, not from the working directory: the command runs from any folder.
const tsx = import.meta.resolve('tsx');
const child = spawn(process.execPath, ['--no-node-snapshot', '--import', tsx, main, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
