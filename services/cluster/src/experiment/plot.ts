import type { Second } from './analyze.js';

/**
 * An SVG of one run, written by hand (no dependencies): requests/s per node (stacked),
 * failed requests/s and lost sessions/s, and p50/p95/p99 latency per second, over time,
 * with a vertical line at the kill and at the restart.
 */
export interface PlotInput {
  title: string;
  seconds: Second[];
  nodes: string[];
  killAtS: number | null;
  restartAtS: number | null;
  /** When the restarted node answered its readiness probe. */
  readyAtS: number | null;
  killedNode: string | null;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const RED = '#d62728';
const PURPLE = '#7b3294';
const GREEN = '#2ca02c';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (n: number) => (Math.round(n * 10) / 10).toString();

/** A y axis for values up to v: a 1/2/5×10^k tick step and the top at a whole number of steps (about 4). */
export function axis(v: number, integer = false): { max: number; step: number } {
  const target = (v > 0 ? v : 1) / 4;
  const p = 10 ** Math.floor(Math.log10(target));
  let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= target) ?? 10 * p;
  if (integer) step = Math.max(1, Math.round(step));
  return { max: Math.max(step, Math.ceil((v > 0 ? v : 1) / step) * step), step };
}

export function plotRun(input: PlotInput): string {
  const W = 900;
  const left = 64;
  const right = 150;
  const plotW = W - left - right;
  const top = 40;
  const panels = [
    { key: 'req', h: 210, label: 'requests/s by node' },
    { key: 'err', h: 90, label: 'failed req/s · lost sessions/s' },
    { key: 'lat', h: 120, label: 'latency (ms)' },
  ] as const;
  const gap = 34;
  const H = top + panels.reduce((n, p) => n + p.h + gap, 0) + 10;
  // The last second is partial (the run ends inside it): leave it out rather than draw a false drop.
  const secs = input.seconds.length > 1 ? input.seconds.slice(0, -1) : input.seconds;
  const n = Math.max(1, secs.length);
  const x = (t: number) => left + (t / n) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${left}" y="22" font-size="14" font-weight="600">${esc(input.title)}</text>`);

  let y0 = top;
  const legend: { color: string; text: string; y: number; dash?: boolean }[] = [];
  for (const panel of panels) {
    const h = panel.h;
    const bottom = y0 + h;
    const peak =
      panel.key === 'req'
        ? Math.max(0, ...secs.map((s) => input.nodes.reduce((a, nd) => a + (s.byNode[nd] ?? 0), 0)))
        : panel.key === 'err'
          ? Math.max(1, ...secs.map((s) => Math.max(s.failed, s.lost)))
          : Math.max(1, ...secs.map((s) => s.p99 ?? 0));
    const { max, step } = axis(peak, panel.key !== 'lat');
    const y = (v: number) => bottom - (Math.min(v, max) / max) * h;

    // Frame, grid, y ticks.
    out.push(`<g><rect x="${left}" y="${y0}" width="${plotW}" height="${h}" fill="#fafafa" stroke="#ccc"/>`);
    for (let v = 0; v <= max + step / 2; v += step) {
      out.push(`<line x1="${left}" x2="${left + plotW}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${left - 6}" y="${f(y(v) + 4)}" text-anchor="end" fill="#555">${Number.isInteger(v) ? v : Number(v.toFixed(3))}</text>`);
    }
    out.push(`<text x="${left}" y="${y0 - 6}" fill="#333" font-weight="600">${esc(panel.label)}</text></g>`);

    if (panel.key === 'req') {
      // Stacked areas, one per node, bottom to top in node order.
      const base = secs.map(() => 0);
      input.nodes.forEach((node, k) => {
        const color = PALETTE[k % PALETTE.length]!;
        const upper = secs.map((s, i) => base[i]! + (s.byNode[node] ?? 0));
        const pts: string[] = [];
        for (const [i, s] of secs.entries()) pts.push(`${f(x(s.t))},${f(y(upper[i]!))}`, `${f(x(s.t + 1))},${f(y(upper[i]!))}`);
        for (let i = secs.length - 1; i >= 0; i--) pts.push(`${f(x(secs[i]!.t + 1))},${f(y(base[i]!))}`, `${f(x(secs[i]!.t))},${f(y(base[i]!))}`);
        if (secs.length)
          out.push(`<polygon points="${pts.join(' ')}" fill="${color}" fill-opacity="0.85" stroke="${color}" stroke-width="0.5"><title>${esc(node)}</title></polygon>`);
        for (const [i, v] of upper.entries()) base[i] = v;
        legend.push({ color, text: node, y: y0 + 12 + k * 16 });
      });
    }
    if (panel.key === 'err') {
      const bw = plotW / n / 2;
      for (const s of secs) {
        if (s.failed > 0)
          out.push(
            `<rect x="${f(x(s.t))}" y="${f(y(s.failed))}" width="${f(bw)}" height="${f(bottom - y(s.failed))}" fill="${RED}"><title>t=${s.t}s failed ${s.failed}</title></rect>`,
          );
        if (s.lost > 0)
          out.push(
            `<rect x="${f(x(s.t) + bw)}" y="${f(y(s.lost))}" width="${f(bw)}" height="${f(bottom - y(s.lost))}" fill="${PURPLE}"><title>t=${s.t}s lost ${s.lost}</title></rect>`,
          );
      }
      legend.push({ color: RED, text: 'failed requests/s', y: y0 + 12 }, { color: PURPLE, text: 'sessions lost/s', y: y0 + 28 });
    }
    if (panel.key === 'lat') {
      const lines: [keyof Second, string, string][] = [
        ['p50', '#1f77b4', 'p50'],
        ['p95', '#ff7f0e', 'p95'],
        ['p99', RED, 'p99'],
      ];
      lines.forEach(([key, color, label], k) => {
        const pts = secs.filter((s) => s[key] !== null).map((s) => `${f(x(s.t + 0.5))},${f(y(s[key] as number))}`);
        if (pts.length) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
        legend.push({ color, text: `${label} latency`, y: y0 + 12 + k * 16 });
      });
    }

    // Kill and restart markers through every panel.
    const marks: [number | null, string, string, string][] = [
      [input.killAtS, RED, `SIGKILL ${input.killedNode ?? ''}`.trim(), '5 3'],
      [input.restartAtS, GREEN, `restart ${input.killedNode ?? ''}`.trim(), '5 3'],
      [input.readyAtS, GREEN, 'ready', '2 3'],
    ];
    marks.forEach(([t, color, label, dash], k) => {
      if (t === null) return;
      out.push(`<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${y0}" y2="${bottom}" stroke="${color}" stroke-width="1.5" stroke-dasharray="${dash}"/>`);
      if (panel.key === 'req')
        out.push(
          `<text x="${f(x(t) + 4)}" y="${y0 + 12 + k * 13}" fill="${color}" font-weight="600" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(label)} (t=${t.toFixed(1)}s)</text>`,
        );
    });
    y0 = bottom + gap;
  }

  // X axis under the last panel.
  const axisY = y0 - gap;
  const step = n <= 30 ? 5 : n <= 90 ? 10 : n <= 300 ? 30 : 60;
  for (let t = 0; t <= n; t += step) {
    out.push(`<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${axisY}" y2="${axisY + 4}" stroke="#555"/>`);
    out.push(`<text x="${f(x(t))}" y="${axisY + 16}" text-anchor="middle" fill="#555">${t}s</text>`);
  }
  for (const l of legend) {
    out.push(`<rect x="${left + plotW + 12}" y="${l.y - 9}" width="12" height="10" fill="${l.color}"/>`);
    out.push(`<text x="${left + plotW + 30}" y="${l.y}" fill="#333">${esc(l.text)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
