/**
 * Every dashboard checked against Grafana's own published schema: @grafana/schema at the version
 * of the Grafana image docker-compose.yml pins (no Grafana runs here). Each dashboard, and each
 * panel's options and custom field config, is written into a TypeScript module as an object
 * literal that must `satisfies` the schema's type (Dashboard; the panel plugin's Options and
 * FieldConfig), and the TypeScript compiler checks it: an unknown or misspelt property, a
 * wrong type, a value outside an enum, or a missing field without a default are errors.
 * The schema's enums are matched by their string values, as the JSON holds them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { pinnedVersion } from '../../../testkit/pinned.js';
import { DASHBOARDS_DIR } from '../../grafana/panels.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The panel plugins the dashboards use, by the name of their schema module. */
const PLUGINS: Record<string, { module: string; fieldConfig: boolean }> = {
  timeseries: { module: 'TimeSeries', fieldConfig: true },
  stat: { module: 'Stat', fieldConfig: false },
  table: { module: 'Table', fieldConfig: true },
};

type Json = Record<string, any>;

/** The TypeScript module that holds a dashboard to the schema. */
function moduleFor(name: string, d: Json): string {
  const lines = [`import type { Dashboard } from '@grafana/schema';`];
  for (const [plugin, { module }] of Object.entries(PLUGINS)) {
    lines.push(`import type * as ${plugin} from '@grafana/schema/dist/esm/raw/composable/${plugin}/panelcfg/x/${module}PanelCfg_types.gen.d.ts';`);
  }
  // The schema's string enums, as the string values a JSON file holds.
  lines.push('type Json<T> = T extends string ? `${T}` : T extends (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T;');
  lines.push(`export const dashboard = ${JSON.stringify(d, null, 1)} satisfies Json<Dashboard>;`);
  const panels: Json[] = (d.panels ?? []).flatMap((p: Json) => [p, ...(p.panels ?? [])]);
  for (const [i, p] of panels.entries()) {
    if (p.type === 'row') continue;
    const plugin = PLUGINS[p.type];
    if (!plugin) throw new Error(`${name}: panel "${p.title}" is a ${p.type}, a plugin this check has no schema module for (add it to PLUGINS)`);
    lines.push(`// ${JSON.stringify(p.title)}`);
    lines.push(`export const options${i} = ${JSON.stringify(p.options ?? {})} satisfies Json<${p.type}.Options>;`);
    if (plugin.fieldConfig) lines.push(`export const custom${i} = ${JSON.stringify(p.fieldConfig?.defaults?.custom ?? {})} satisfies Json<${p.type}.FieldConfig>;`);
  }
  return `${lines.join('\n')}\n`;
}

// Inside the repository, so that the modules resolve @grafana/schema from its node_modules.
const work = fs.mkdtempSync(path.join(fs.existsSync(path.join(ROOT, '.run')) ? path.join(ROOT, '.run') : os.tmpdir(), 'grafana-schema-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Type-checks the modules; returns each error as `file:line: message` with the line's text. */
function check(files: Record<string, string>): string[] {
  const paths = Object.entries(files).map(([name, text]) => {
    const file = path.join(work, `${name}.ts`);
    fs.writeFileSync(file, text);
    return file;
  });
  const program = ts.createProgram(paths, {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
  });
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const message = ts.flattenDiagnosticMessageText(diag.messageText, '\n');
    if (!diag.file || diag.start === undefined) return message;
    const { line } = diag.file.getLineAndCharacterOfPosition(diag.start);
    const text = diag.file.text.split('\n')[line]!.trim().slice(0, 160);
    return `${path.basename(diag.file.fileName)}:${line + 1}: ${message.split('\n')[0]}\n    ${text}`;
  });
}

const dashboards = Object.fromEntries(
  fs
    .readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f.replace(/\.json$/, ''), JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as Json]),
);

describe("the dashboards against Grafana's published schema (@grafana/schema)", () => {
  it('uses the schema of the Grafana release docker-compose.yml pins', () => {
    const installed = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/@grafana/schema/package.json'), 'utf8')).version;
    expect(installed).toBe(pinnedVersion('grafana'));
  });

  it('every dashboard, panel options and custom field config satisfy it', () => {
    expect(Object.keys(dashboards).sort()).toEqual(['cluster', 'redis-nginx', 'sessions']);
    const errors = check(Object.fromEntries(Object.entries(dashboards).map(([name, d]) => [name, moduleFor(name, d)])));
    expect(errors, errors.join('\n')).toEqual([]);
  }, 60_000);

  it('finds what the schema forbids (the check is not a no-op)', () => {
    /** One fault per copy of the cluster dashboard, each a module of its own. */
    const faults: Record<string, [(d: Json, panels: Json[]) => void, RegExp]> = {
      enum: [(_, ps) => (ps.find((p) => p.type === 'stat')!.options.graphMode = 'sparkline'), /"sparkline"/], // none|line|area
      custom: [(_, ps) => (ps.find((p) => p.type === 'timeseries')!.fieldConfig.defaults.custom.lineWidht = 2), /lineWidht/],
      top: [(d) => (d.graphTooltp = 1), /graphTooltp/],
      variable: [(d) => (d.templating.list[1].definition = 'label_values(up, job)'), /definition/], // not in 11.6's variable model
      required: [(_, ps) => delete ps.find((p) => p.type === 'table')!.options.frameIndex, /frameIndex/],
    };
    const modules: Record<string, string> = {};
    for (const [name, [breakIt]] of Object.entries(faults)) {
      const d = structuredClone(dashboards.cluster!);
      breakIt(
        d,
        d.panels.flatMap((p: Json) => [p, ...(p.panels ?? [])]),
      );
      modules[`broken-${name}`] = moduleFor(name, d);
    }
    const errors = check(modules);
    for (const [name, [, expected]] of Object.entries(faults)) {
      const mine = errors.filter((e) => e.startsWith(`broken-${name}.ts:`));
      expect(mine, `${name}: ${errors.join('\n')}`).toHaveLength(1);
      expect(mine[0]).toMatch(expected);
    }
  }, 60_000);
});
