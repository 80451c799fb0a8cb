// The hosts' upstream DNS server (infra/swarm/hosts.sh starts it on the bridge's address, and each
// dockerd is given it with --dns): every query it is asked is answered NXDOMAIN at once.
// Docker's DNS answers the swarm's own names (services, tasks.<service>, task hostnames) itself and
// forwards only the rest here. With no answer at all (no way out of this machine), each forwarded
// query took 20 s, and whatever asked waited: Redis Sentinel resolves hostnames in its one thread,
// so it stalled past its 2 s tilt trigger and, in TILT mode, failed nothing over for 30 s.
//   node no-dns.mjs ADDRESS [PORT]
import dgram from 'node:dgram';

const [address, port = '53'] = process.argv.slice(2);
if (!address) {
  process.stderr.write('usage: node no-dns.mjs ADDRESS [PORT]\n');
  process.exit(2);
}
const server = dgram.createSocket('udp4');
server.on('message', (query, from) => {
  if (query.length < 12) return;
  const answer = Buffer.from(query);
  // QR = 1 (a response), the opcode and RD kept; RA = 1; RCODE = 3 (NXDOMAIN); no answer records.
  answer[2] = 0x80 | (query[2] & 0x79);
  answer[3] = 0x80 | 3;
  answer.writeUInt16BE(0, 6);
  answer.writeUInt16BE(0, 8);
  answer.writeUInt16BE(0, 10);
  server.send(answer, from.port, from.address);
});
server.bind(Number(port), address, () => process.stderr.write(`no-dns: NXDOMAIN for everything on ${address}:${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
