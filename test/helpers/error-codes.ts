/**
 * Source checks behind test/unit/errors-table.test.ts, over the TypeScript syntax tree (typescript is a dev
 * dependency): which error codes the library can produce, whether docs/ERRORS.md lists each of them, and
 * whether any code classifies an error by its message text. Pure functions over {path, text} so that a test
 * can feed them a synthetic snippet and see a violation flagged.
 */
import ts from 'typescript';

export interface SourceText {
  path: string;
  text: string;
}

/** One place a code comes from. `prefix` marks a template code (`TOR_REPLY_${status}`): only its head is known. */
export interface CodeSite {
  code: string;
  prefix: boolean;
  file: string;
  line: number;
  via: string;
}

const CODE_RE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;

function parse(src: SourceText): ts.SourceFile {
  return ts.createSourceFile(src.path, src.text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

function lineOf(sf: ts.SourceFile, node: ts.Node): number {
  return sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
}

function walk(node: ts.Node, visit: (n: ts.Node) => void): void {
  visit(node);
  node.forEachChild((c) => walk(c, visit));
}

/** String literals an expression can evaluate to (through ?:, ??, ||, parentheses, `as`); templates as prefixes. */
function literalsOf(e: ts.Expression): { code: string; prefix: boolean }[] {
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [{ code: e.text, prefix: false }];
  if (ts.isTemplateExpression(e)) return [{ code: e.head.text, prefix: true }];
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e)) {
    return literalsOf(e.expression);
  }
  if (ts.isConditionalExpression(e)) return [...literalsOf(e.whenTrue), ...literalsOf(e.whenFalse)];
  const either = [ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken];
  if (ts.isBinaryExpression(e) && either.includes(e.operatorToken.kind)) {
    return [...literalsOf(e.left), ...literalsOf(e.right)];
  }
  return [];
}

function unionLiterals(t: ts.TypeNode): string[] {
  if (ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal)) return [t.literal.text];
  if (ts.isUnionTypeNode(t)) return t.types.flatMap(unionLiterals);
  if (ts.isParenthesizedTypeNode(t)) return unionLiterals(t.type);
  return [];
}

/**
 * Every error code the sources can produce: first arguments of `new C(...)` / `super(...)` for each class
 * C that extends OnionpunchError (directly or not), the string-literal unions a class types its `code` with,
 * and `code: 'X'` properties (reply tables, JSON error reports). A code held in a plain variable is covered
 * by its class's union; classes typed `code: string` must construct with literals to be checked.
 */
export function collectErrorCodes(sources: readonly SourceText[]): CodeSite[] {
  const files = sources.map((s) => ({ src: s, sf: parse(s) }));
  const classes = new Set<string>(['OnionpunchError']);
  const aliases = new Map<string, string[]>();
  const classNodes: { sf: ts.SourceFile; node: ts.ClassDeclaration }[] = [];
  for (const { sf } of files) {
    walk(sf, (n) => {
      if (ts.isTypeAliasDeclaration(n)) aliases.set(n.name.text, unionLiterals(n.type));
      if (ts.isClassDeclaration(n) && n.name) classNodes.push({ sf, node: n });
    });
  }
  // Subclasses, to a fixed point (a subclass may be declared before its base in the file list).
  for (let grew = true; grew;) {
    grew = false;
    for (const { node } of classNodes) {
      const base = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
      if (base && ts.isIdentifier(base) && classes.has(base.text) && !classes.has(node.name!.text)) {
        classes.add(node.name!.text);
        grew = true;
      }
    }
    for (const { sf } of files) {
      walk(sf, (n) => {
        // `export const OldName = NewName` aliases of an error class.
        if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer && ts.isIdentifier(n.initializer)) {
          if (classes.has(n.initializer.text) && !classes.has(n.name.text)) {
            classes.add(n.name.text);
            grew = true;
          }
        }
      });
    }
  }
  // Whether `new C(x, ...)` passes the code as x: C's constructor names its first parameter `code`; a class
  // without a constructor takes its base's (UsageError(message) passes its code to super() itself).
  const byName = new Map(classNodes.map((c) => [c.node.name!.text, c.node]));
  const codeFirst = (name: string, depth = 0): boolean => {
    const node = byName.get(name);
    if (!node || depth > 32) return name === 'OnionpunchError' || !node;
    const ctor = node.members.find(ts.isConstructorDeclaration);
    if (ctor) {
      const p = ctor.parameters[0];
      return p !== undefined && ts.isIdentifier(p.name) && p.name.text === 'code';
    }
    const base = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
    return base !== undefined && ts.isIdentifier(base) ? codeFirst(base.text, depth + 1) : false;
  };
  const sites: CodeSite[] = [];
  const add = (sf: ts.SourceFile, node: ts.Node, via: string, found: { code: string; prefix: boolean }[]): void => {
    for (const f of found) {
      const looksLikeCode = f.prefix ? /^[A-Z][A-Z0-9_]*$/.test(f.code) : CODE_RE.test(f.code);
      if (looksLikeCode) sites.push({ ...f, file: sf.fileName, line: lineOf(sf, node), via });
    }
  };
  for (const { sf, node } of classNodes) {
    if (!classes.has(node.name!.text)) continue;
    for (const m of node.members) {
      let type: ts.TypeNode | undefined;
      if (ts.isConstructorDeclaration(m)) type = m.parameters[0]?.type;
      if (ts.isPropertyDeclaration(m) && ts.isIdentifier(m.name) && m.name.text === 'code') type = m.type;
      if (type && ts.isTypeReferenceNode(type) && ts.isIdentifier(type.typeName)) {
        const lits = aliases.get(type.typeName.text) ?? [];
        add(
          sf,
          m,
          `type ${type.typeName.text} of ${node.name!.text}`,
          lits.map((code) => ({ code, prefix: false })),
        );
      } else if (type) {
        add(
          sf,
          m,
          `code type of ${node.name!.text}`,
          unionLiterals(type).map((code) => ({ code, prefix: false })),
        );
      }
    }
  }
  for (const { sf } of files) {
    let inClass: string | undefined;
    const visit = (n: ts.Node): void => {
      const outer = inClass;
      if (ts.isClassDeclaration(n) && n.name) inClass = n.name.text;
      const ctor = ts.isNewExpression(n) && ts.isIdentifier(n.expression) ? n.expression.text : undefined;
      if (ts.isNewExpression(n) && ctor && classes.has(ctor) && n.arguments?.[0] && codeFirst(ctor)) {
        add(sf, n, `new ${ctor}`, literalsOf(n.arguments[0]));
      }
      const isSuper = ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.SuperKeyword;
      if (isSuper && inClass && classes.has(inClass) && n.arguments[0]) {
        add(sf, n, `super() of ${inClass}`, literalsOf(n.arguments[0]));
      }
      const named = ts.isPropertyAssignment(n) && (ts.isIdentifier(n.name) || ts.isStringLiteral(n.name));
      if (named && n.name.text === 'code') {
        add(sf, n, 'code property', literalsOf(n.initializer));
      }
      n.forEachChild(visit);
      inClass = outer;
    };
    visit(sf);
  }
  return sites;
}

/** A row of the table: an exact code, or a family (`TOR_REPLY_<status>`, `E<errno>`: the tail is [A-Z0-9]+). */
export interface TableEntry {
  code: string;
  family: boolean;
}

/** The codes docs/ERRORS.md lists: the first cell of every table row, in backticks. */
export function parseErrorTable(markdown: string): TableEntry[] {
  const out: TableEntry[] = [];
  for (const line of markdown.split('\n')) {
    const m = /^\|\s*`([A-Z][A-Z0-9_]*)(<[a-z-]+>)?`\s*\|/.exec(line);
    if (m) out.push({ code: m[1]!, family: m[2] !== undefined });
  }
  return out;
}

/** The sites whose code the table does not list. */
export function unlistedCodes(sites: readonly CodeSite[], table: readonly TableEntry[]): CodeSite[] {
  const exact = new Set(table.filter((t) => !t.family).map((t) => t.code));
  const families = table.filter((t) => t.family).map((t) => t.code);
  return sites.filter((s) => {
    if (s.prefix) return !families.includes(s.code) && !exact.has(s.code);
    if (exact.has(s.code)) return false;
    return !families.some((f) => s.code.startsWith(f) && /^[A-Z0-9]+$/.test(s.code.slice(f.length)));
  });
}

/** One place that classifies by message text. */
export interface MessageMatch {
  file: string;
  line: number;
  text: string;
}

const STRING_TESTS = new Set(['includes', 'startsWith', 'endsWith', 'match', 'matchAll', 'search', 'indexOf']);

/** True for `x.message`, `String(err)`, `` `${err}` `` and `err.toString()`-like operands: an error's text. */
function isErrorText(e: ts.Expression): boolean {
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e)) {
    return isErrorText(e.expression);
  }
  if (ts.isPropertyAccessExpression(e) && e.name.text === 'message') return true;
  if (ts.isCallExpression(e) && ts.isIdentifier(e.expression) && e.expression.text === 'String' && e.arguments[0]) {
    const a = e.arguments[0];
    return ts.isIdentifier(a) && /^(e|err|error|cause|reason)$/i.test(a.text);
  }
  if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken) {
    return isErrorText(e.left);
  }
  // A local that holds the message (`const msg = err.message`).
  return ts.isIdentifier(e) && /^(msg|message|errmsg|errormessage)$/i.test(e.text);
}

/**
 * Places that look inside an error's message to decide something: `err.message.includes(...)`,
 * `/re/.test(err.message)`, `String(err).match(...)` and the like. Errors are told apart by class and code.
 */
export function findMessageMatching(sources: readonly SourceText[]): MessageMatch[] {
  const out: MessageMatch[] = [];
  for (const src of sources) {
    const sf = parse(src);
    walk(sf, (n) => {
      if (!ts.isCallExpression(n)) return;
      const callee = n.expression;
      if (!ts.isPropertyAccessExpression(callee) && !ts.isPropertyAccessChain(callee)) return;
      const method = callee.name.text;
      const hit =
        (STRING_TESTS.has(method) && isErrorText(callee.expression)) ||
        ((method === 'test' || method === 'exec') && n.arguments[0] !== undefined && isErrorText(n.arguments[0]));
      if (hit) out.push({ file: src.path, line: lineOf(sf, n), text: n.getText(sf).slice(0, 120) });
    });
  }
  return out;
}
