import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The app package imports in one direction: no file reaches itself through its imports (type-only
// imports count too: a circle of types still ties the files' meaning into one knot).
const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every relative import of a TypeScript file, as the file it names (`./x.js` is `./x.ts`). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specifiers.map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, '.ts')).filter((f) => fs.existsSync(f));
}

/** Each circle once, as the files around it, starting from the first one met. */
function circles(files: string[]): string[][] {
  const edges = new Map(files.map((f) => [f, importsOf(f)]));
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of edges.get(f) ?? []) {
      if (state.get(next) === 'open') found.push(stack.slice(stack.indexOf(next)));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

const sources = (dir: string): string[] =>
  fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));

describe('imports of services/app/src', () => {
  it('finds every file and its relative imports (the walk sees what it must)', () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(40);
    expect(importsOf(path.join(SRC, 'session/modes/index.ts'))).toContain(path.join(SRC, 'session/modes/shared.ts'));
    expect(importsOf(path.join(SRC, 'session/layer.ts'))).toContain(path.join(SRC, 'modes.ts')); // a type-only import counts
  });

  it('form no circle', () => {
    const found = circles(sources(SRC)).map((c) => c.map((f) => path.relative(SRC, f)).join(' -> '));
    expect(found).toEqual([]);
  });
});
