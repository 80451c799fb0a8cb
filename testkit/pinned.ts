import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const COMPOSE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docker-compose.yml');

/** The image docker-compose.yml names for a service. */
export function composeImage(service: string): string {
  const doc = parse(fs.readFileSync(COMPOSE, 'utf8')) as { services: Record<string, { image?: string }> };
  const image = doc.services[service]?.image;
  if (!image) throw new Error(`docker-compose.yml has no image for ${service}`);
  return image;
}

/** The release a service's image pins: `prom/prometheus:v3.5.0` -> 3.5.0, `nginx:1.30.5-alpine` -> 1.30.5. */
export function pinnedVersion(service: string): string {
  const image = composeImage(service);
  const m = /:v?(\d+\.\d+\.\d+)(?:-[\w.-]+)?$/.exec(image);
  if (!m) throw new Error(`docker-compose.yml: ${service} is not pinned to a release x.y.z (${image})`);
  return m[1]!;
}

/** The first x.y.z after `version`, `Exporter` or `k6` in a program's --version text. */
export function reportedVersion(text: string): string | undefined {
  return /(?:version|Exporter|k6) v?(\d+\.\d+\.\d+)/.exec(text)?.[1];
}
