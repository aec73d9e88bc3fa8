/**
 * Install-time build of the web console (dist/console/): run by scripts/build.ts with the
 * other scripts/build-*.ts modules, or alone: `node --import tsx scripts/build-console.ts`.
 */
import { pathToFileURL } from 'node:url';
import { buildConsole, kPackageRoot } from '../src/server/console-build.ts';

export default async function build(root: string): Promise<void> {
  await buildConsole(root);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await build(kPackageRoot);
  console.log('console built into dist/console/');
}
