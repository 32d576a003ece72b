/**
 * Generates docs/api.md, the library's API reference, from the source: every export of
 * src/index.ts with its doc comment and its declaration (functions and methods without their
 * bodies, private members left out), grouped by the module that defines it. Uses the TypeScript 5
 * compiler API (the `ts5` dev dependency), which the native TypeScript 7 compiler does not offer.
 *
 * `npm run docs` rewrites the file; test/api-docs.test.ts fails when it is out of date.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'ts5';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const HEADER = `# API reference

Generated from the source by \`npm run docs\` (scripts/api-docs.ts): every export of
\`rxtrain\` (src/index.ts) with its doc comment and declaration, grouped by the module that
defines it. The prose around it — how a stage is written, its context, its state, the messages —
is in the README ("rxtrain as a library") and [architecture.md](architecture.md).
`;

export function generatedApiReference(): string {
  const entry = join(ROOT, 'src/index.ts');
  // The project's own options (tsconfig.json): ES2023's library and Node's types, not the DOM's
  // (2 MB of declarations, a third of what the default options parse).
  const program = ts.createProgram([entry], {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    types: ['node'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry)!;
  const moduleSymbol = checker.getSymbolAtLocation(source)!;
  const printer = ts.createPrinter({ removeComments: false });

  const byModule = new Map<string, string[]>();
  const exports = checker.getExportsOfModule(moduleSymbol).sort((a, b) => a.name.localeCompare(b.name));
  for (const exported of exports) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const declaration = symbol.declarations?.[0];
    if (!declaration) continue;
    const file = declaration.getSourceFile();
    const module = relative(ROOT, file.fileName);
    const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
    // The doc comment is shown as prose above the code: the code keeps only members' comments.
    const code = declarationText(declaration, exported.name, checker, printer, file).replace(
      /^\/\*\*[\s\S]*?\*\/\n/,
      '',
    );
    const entryText = `### \`${exported.name}\`\n\n${doc ? `${doc}\n\n` : ''}\`\`\`ts\n${code}\n\`\`\`\n`;
    byModule.set(module, [...(byModule.get(module) ?? []), entryText]);
  }
  let text = HEADER;
  for (const module of [...byModule.keys()].sort()) {
    text += `\n## ${module}\n\n${byModule.get(module)!.join('\n')}`;
  }
  return text;
}

/** The declaration as a reader needs it: no bodies, no private members, no initialisers. */
function declarationText(
  node: ts.Declaration,
  name: string,
  checker: ts.TypeChecker,
  printer: ts.Printer,
  file: ts.SourceFile,
): string {
  const f = ts.factory;
  const print = (n: ts.Node) => printer.printNode(ts.EmitHint.Unspecified, n, file);
  if (ts.isFunctionDeclaration(node)) {
    return print(
      f.updateFunctionDeclaration(
        node,
        node.modifiers,
        node.asteriskToken,
        node.name,
        node.typeParameters,
        node.parameters,
        node.type,
        undefined,
      ),
    ).replace(/;?$/, ';');
  }
  if (ts.isClassDeclaration(node)) {
    const members = node.members
      .filter(
        (m) => !(ts.getCombinedModifierFlags(m) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)),
      )
      .filter((m) => !(m.name && ts.isPrivateIdentifier(m.name)))
      .map((m) => {
        if (ts.isMethodDeclaration(m))
          return f.updateMethodDeclaration(
            m,
            m.modifiers,
            m.asteriskToken,
            m.name,
            m.questionToken,
            m.typeParameters,
            m.parameters,
            m.type,
            undefined,
          );
        if (ts.isConstructorDeclaration(m))
          return f.updateConstructorDeclaration(m, m.modifiers, m.parameters, undefined);
        if (ts.isGetAccessorDeclaration(m))
          return f.updateGetAccessorDeclaration(m, m.modifiers, m.name, m.parameters, m.type, undefined);
        if (ts.isPropertyDeclaration(m))
          return f.updatePropertyDeclaration(m, m.modifiers, m.name, m.questionToken, m.type, undefined);
        return m;
      });
    return print(
      f.updateClassDeclaration(
        node,
        node.modifiers,
        node.name,
        node.typeParameters,
        node.heritageClauses,
        members,
      ),
    );
  }
  if (ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) return print(node);
  if (ts.isVariableDeclaration(node)) {
    const type = checker.typeToString(
      checker.getTypeAtLocation(node),
      undefined,
      ts.TypeFormatFlags.NoTruncation & 0,
    );
    return `const ${name}: ${type};`;
  }
  return print(node);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const out = join(ROOT, 'docs/api.md');
  writeFileSync(out, generatedApiReference());
  console.log(`wrote ${relative(process.cwd(), out)}`);
}
