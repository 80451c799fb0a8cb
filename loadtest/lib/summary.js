// The end of a run: k6's summary data as JSON (to SUMMARY_PATH) and a compact text summary on stdout.
// k6 prints no summary of its own once a script exports handleSummary, and its text formatter is
// not importable offline (jslib.k6.io is a remote module), so the text is written here.
import { config } from './config.js';

const ms = (v) => (v === undefined || v === null || Number.isNaN(v) ? '-' : v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${v.toFixed(2)}ms`);
const num = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

function formatValues(metric, trendOrder) {
  const v = metric.values;
  switch (metric.type) {
    case 'trend': {
      // Go maps have no order: show the stats in summaryTrendStats order.
      const keys = Object.keys(v).sort((a, b) => trendOrder.indexOf(a) - trendOrder.indexOf(b));
      return keys.map((k) => `${k}=${metric.contains === 'time' ? ms(v[k]) : num(v[k])}`).join(' ');
    }
    case 'counter':
      return `count=${num(v.count)} rate=${v.rate.toFixed(2)}/s`;
    case 'rate':
      return `${(v.rate * 100).toFixed(3)}% (${v.passes} of ${v.passes + v.fails})`;
    case 'gauge':
      return `value=${num(v.value)} min=${num(v.min)} max=${num(v.max)}`;
    default:
      return JSON.stringify(v);
  }
}

/** A text summary: thresholds first (✓/✗), then every metric, sub-metrics under their parent. */
export function textSummary(data) {
  const lines = [];
  const metrics = data.metrics || {};
  const names = Object.keys(metrics).sort();
  const held = [];
  for (const name of names) {
    for (const [source, t] of Object.entries(metrics[name].thresholds || {})) held.push(`  ${t.ok ? '✓' : '✗'} ${name}: ${source}`);
  }
  lines.push(`session-cluster ${config.mode} mode, profile ${config.profile}, ${config.baseUrl}`);
  if (data.state) lines.push(`run: ${(data.state.testRunDurationMs / 1000).toFixed(1)} s`);
  if (held.length) lines.push('thresholds:', ...held);
  lines.push('metrics:');
  const width = Math.max(...names.map((n) => n.length)) + 2;
  const trendOrder = (data.options && data.options.summaryTrendStats) || ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'];
  for (const name of names) lines.push(`  ${name.padEnd(width, '.')} ${formatValues(metrics[name], trendOrder)}`);
  return `\n${lines.join('\n')}\n\n`;
}

/** handleSummary's return value: the JSON to SUMMARY_PATH, the text to stdout. */
export function summaryOutputs(data, path = config.summaryPath) {
  return { [path]: JSON.stringify(data, null, 2), stdout: textSummary(data) };
}
