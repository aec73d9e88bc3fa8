/**
 * The configuration table of docs/operations.md, made from the options table. A spec checks that
 * the page holds exactly this; `npm run docs:config` writes it there.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { kOptionList } from './options.ts';

export const kTableStart = '<!-- options table: written by `npm run docs:config` from src/config/options.ts -->';
export const kTableEnd = '<!-- end of options table -->';

export function optionsTable(): string {
  const rows = kOptionList.map(([key, o]) => {
    const shown = o.shown ?? ('default' in o ? (o.kind === 'bool' ? (o.default ? 'on' : 'off') : `\`${o.default}\``) : '—');
    const flag = o.flag ? `\`--${o.flag}\`` : '';
    const extra = o.kind === 'bool' && o.negated ? '; the flag turns it off'
      : o.kind === 'enum' ? `: ${o.values.map((v) => `\`${v}\``).join(', ')}`
        : o.kind === 'int' && o.unit ? ` (${o.unit})` : '';
    return `| \`${key}\` | ${o.env ? `\`${o.env}\`` : ''} | ${flag} | ${shown} | ${o.doc}${extra} |`;
  });
  return [kTableStart, '| option | variable | flag | default | meaning |', '|---|---|---|---|---|', ...rows, kTableEnd].join('\n');
}

/** The page's text with its table replaced by the current one. */
export function withTable(page: string): string {
  const a = page.indexOf(kTableStart);
  const b = page.indexOf(kTableEnd);
  if (a === -1 || b < a) throw new Error('the page has no options table markers');
  return page.slice(0, a) + optionsTable() + page.slice(b + kTableEnd.length);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = new URL('../../docs/operations.md', import.meta.url);
  fs.writeFileSync(file, withTable(fs.readFileSync(file, 'utf8')));
}
