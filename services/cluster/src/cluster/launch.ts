import { launch, type PartSpec, type PartState } from '../parts.js';

/** launch(), and one progress line once the part is healthy. */
export async function launchReporting(spec: PartSpec, logDir: string, say: (line: string) => void = () => {}): Promise<PartState> {
  const t0 = Date.now();
  const part = await launch(spec, logDir);
  say(`${spec.name.padEnd(15)} healthy  ${spec.url}  (pid ${part.pid}, ${Date.now() - t0} ms)`);
  return part;
}
