/**
 * Read-only syntax colouring for a worker's source (JavaScript/TypeScript, Python, shell and
 * the like): comments, strings, numbers and keywords become spans. It builds text nodes, never
 * HTML, so a worker's source cannot put markup into the page.
 */

const kKeywords: Record<string, Set<string>> = {
  js: new Set('async await break case catch class const continue default delete do else export extends finally for from function if import in instanceof let new of return static super switch this throw try typeof var void while with yield true false null undefined'.split(' ')),
  py: new Set('and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield True False None self'.split(' ')),
  sh: new Set('if then else elif fi case esac for while until do done function in return exit export local set echo read'.split(' ')),
};

/** The language a worker's type and delegate name suggest. */
export function languageOf(type: string, delegate: string): 'js' | 'py' | 'sh' {
  if (type === 'python' || delegate.endsWith('.py')) return 'py';
  if (type === 'sh' || type === 'bash' || delegate.endsWith('.sh')) return 'sh';
  return 'js';
}

const kToken = {
  js: /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)|(\b\d[\d_]*(?:\.\d+)?(?:e[+-]?\d+)?\b)|([A-Za-z_$][\w$]*)/g,
  py: /(#[^\n]*)|("""[\s\S]*?"""|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(\b\d[\d_]*(?:\.\d+)?\b)|([A-Za-z_]\w*)/g,
  sh: /(#[^\n]*)|("(?:[^"\\]|\\.)*"|'[^']*')|(\b\d+\b)|([A-Za-z_]\w*)/g,
};

export function highlight(code: string, lang: 'js' | 'py' | 'sh'): DocumentFragment {
  const out = document.createDocumentFragment();
  const re = new RegExp(kToken[lang].source, 'g');
  let at = 0;
  const span = (cls: string, text: string) => {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    out.append(s);
  };
  for (let m = re.exec(code); m !== null; m = re.exec(code)) {
    if (m.index > at) out.append(code.slice(at, m.index));
    if (m[1]) span('tok-comment', m[1]);
    else if (m[2]) span('tok-string', m[2]);
    else if (m[3]) span('tok-number', m[3]);
    else if (m[4] && kKeywords[lang]!.has(m[4])) span('tok-keyword', m[4]);
    else out.append(m[0]);
    at = m.index + m[0].length;
  }
  if (at < code.length) out.append(code.slice(at));
  return out;
}
