// The app image's entry (services/app/Dockerfile): names the node after its container, then starts it.
//
// Compose names a scaled replica `<project>-app-<n>` (session-cluster-app-2), the name `docker kill`
// and `docker start` take, but the container's hostname is its id, and compose cannot give each
// replica of a `--scale`d service its own environment. Docker's embedded DNS answers a reverse
// (PTR) lookup of a container's address with `<container name>.<network>`, so the node asks it for
// its own address, and uses the first label as NODE_ID: `X-Served-By`, the `node` label of its
// metrics and its log lines then name the container. Node's resolver asks the DNS server
// (127.0.0.11 in a container) directly, not /etc/hosts (which maps the address to the hostname).
//
// An explicit NODE_ID wins. Outside compose (plain `docker run`, no embedded DNS) the lookup fails
// and the node keeps its default, the hostname; the reason is logged.
import dns from 'node:dns/promises';
import os from 'node:os';

const VALID = /^[A-Za-z0-9_.-]{1,64}$/;
// Short timeouts: without Docker's DNS (a plain `docker run`), give up within a few seconds.
const resolver = new dns.Resolver({ timeout: 500, tries: 1 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function containerName() {
  const addresses = Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
  let lastError = 'no non-loopback IPv4 address';
  // The name is registered with the DNS as the container starts; allow it a moment.
  for (let attempt = 0; attempt < 5; attempt++) {
    for (const ip of addresses) {
      try {
        // resolvePtr, not reverse(): c-ares' reverse() drops names with an underscore, and the
        // network part of Docker's answer has one (session-cluster_default).
        const arpa = `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
        for (const fqdn of await resolver.resolvePtr(arpa)) {
          const name = fqdn.split('.')[0];
          if (VALID.test(name)) return name;
        }
        lastError = `${ip}: no usable PTR name`;
      } catch (err) {
        lastError = `${ip}: ${err.code ?? err.message}`;
      }
    }
    await sleep(200);
  }
  throw new Error(lastError);
}

if (!process.env.NODE_ID) {
  try {
    process.env.NODE_ID = await containerName();
  } catch (err) {
    process.stderr.write(`docker-entrypoint: no container name from Docker's DNS (${err.message}); NODE_ID stays the hostname ${os.hostname()}\n`);
  }
}
await import('./dist/main.js');
