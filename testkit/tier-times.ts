import type { Reporter, TestModule } from 'vitest/node';

/** A vitest reporter: each tier's wall time, from its first file's start to its last file's end. */
export class TierTimes implements Reporter {
  private readonly spans = new Map<string, { start: number; end: number; files: number }>();

  onTestModuleStart(m: TestModule): void {
    if (!this.spans.has(m.project.name)) this.spans.set(m.project.name, { start: Date.now(), end: Date.now(), files: 0 });
  }

  onTestModuleEnd(m: TestModule): void {
    const s = this.spans.get(m.project.name);
    if (s) Object.assign(s, { end: Date.now(), files: s.files + 1 });
  }

  onTestRunEnd(): void {
    if (this.spans.size === 0) return;
    const rows = [...this.spans].map(([tier, s]) => `  ${tier.padEnd(8)} ${String(s.files).padStart(3)} files  ${((s.end - s.start) / 1000).toFixed(0).padStart(5)} s`);
    console.log(`\nTier wall times (first file's start to last file's end):\n${rows.join('\n')}`);
  }
}
