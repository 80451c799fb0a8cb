import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { pinnedCommand, type PinPlan } from '../lib/pin.js';
import { which } from '../lib/process.js';

/**
 * wrk (Debian's package) as the load generator: the same connections, threads and duration for
 * every configuration. Small Lua scripts rotate credentials (reads: a `Cookie` or `Authorization`
 * header per session) or demo users (logins).
 */
export interface WrkResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU time wrk itself used (user + system), microseconds: the load generator's cost. */
  cpuUs: number;
}

const LUA = {
  get: `
local creds, path, i = {}, "/", 0
function init(args)
  path = args[1]
  if args[2] then
    for line in io.lines(args[2]) do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      if name then creds[#creds + 1] = { [name] = value } end
    end
  end
  i = math.random(0, math.max(#creds, 1))
end
function request()
  if #creds == 0 then return wrk.format("GET", path) end
  i = i % #creds + 1
  return wrk.format("GET", path, creds[i])
end
`,
  login: `
local first, count, i = 1, 100, 0
function init(args)
  first, count = tonumber(args[1]), tonumber(args[2])
  i = math.random(0, count)
end
function request()
  i = i % count + 1
  local n = first + i - 1
  return wrk.format("POST", "/api/login", { ["Content-Type"] = "application/json" },
    '{"username":"user' .. n .. '","password":"pass' .. n .. '"}')
end
`,
};

/**
 * Logs in user1..userN at `url` and writes the file the `get` script rotates through: one line per
 * session, the header that carries its credential (`Cookie: …` with every cookie but the device
 * cookie, so sticky mode's route cookie too; or `Authorization: Bearer …` in jwt mode).
 */
export async function writeCredentials(url: string, users: number, file: string): Promise<string> {
  const lines: string[] = new Array<string>(users);
  const login = async (i: number) => {
    const res = await loginOnce(url, i);
    const body = (await res.json()) as { accessToken?: string };
    const cookies = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .filter((c) => !c!.startsWith('device='))
      .join('; ');
    lines[i - 1] = body.accessToken ? `Authorization: Bearer ${body.accessToken}` : `Cookie: ${cookies}`;
  };
  await inFlight(users, (k) => login(k + 1));
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/**
 * Logs each of the users `first`..`first + count - 1` in `times` times, user after user, round after
 * round (one user never twice at once): afterwards each holds at least `times` sessions, newest
 * last. wrk's login script cannot promise that: its threads start at random users, so one user
 * gets a login or two more than another, and a user left below the per-user cap makes the next
 * measured login cheaper (no session to end).
 */
export async function loginEach(url: string, users: { first: number; count: number }, times: number): Promise<void> {
  await inFlight(users.count * times, async (k) => {
    const res = await loginOnce(url, users.first + (k % users.count));
    await res.body?.cancel();
  });
}

/** `n` jobs, a few at a time, in order: nginx spreads them over the nodes, and each login is a scrypt on one node. */
async function inFlight(n: number, job: (k: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(LOGINS_IN_FLIGHT, n) }, worker));
}

/** One login of user`i` (password pass`i`); throws unless it succeeds. */
async function loginOnce(url: string, i: number): Promise<Response> {
  const attempt = () =>
    fetch(`${url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: `user${i}`, password: `pass${i}` }),
    });
  let res = await attempt();
  // 503 says "try again shortly" (a busy or briefly unreachable store on a loaded machine): as a client would, after its Retry-After.
  for (let retry = 1; res.status === 503 && retry <= LOGIN_RETRIES; retry++) {
    await new Promise((r) => setTimeout(r, 1000 * Math.min(5, Number(res.headers.get('retry-after')) || 1)));
    res = await attempt();
  }
  if (!res.ok) throw new Error(`login user${i} failed with ${res.status}${res.status === 503 ? ` after ${LOGIN_RETRIES} retries` : ''}: ${(await res.text()).slice(0, 200)}`);
  return res;
}

const LOGINS_IN_FLIGHT = 4;
const LOGIN_RETRIES = 5;

export function requireWrk(): string {
  const bin = which('wrk');
  if (!bin) throw new Error('wrk is not installed: apt-get install wrk (scripts/setup.sh does this as root)');
  return bin;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** bash's `times` after wrk: its second line is the children's user and system time, e.g. `0m1.250s 0m0.310s`. */
export function parseTimes(out: string): number {
  const lines = out
    .trim()
    .split('\n')
    .filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim()));
  const children = lines.at(-1);
  if (!children) return NaN;
  return children
    .trim()
    .split(' ')
    .map((t) => /^(\d+)m([\d.]+)s$/.exec(t)!)
    .reduce((us, m) => us + (Number(m[1]) * 60 + Number(m[2])) * 1e6, 0);
}

export function parseWrk(out: string): Omit<WrkResult, 'cpuUs'> {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50Ms = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99Ms = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  if (!Number.isFinite(requests) || !Number.isFinite(rps)) throw new Error(`could not read wrk's output:\n${out}`);
  return { requests, rps, p50Ms, p99Ms, errors };
}

export async function runWrk(opts: {
  url: string;
  kind: 'get' | 'login';
  path?: string;
  cookieFile?: string;
  /** Logins cycle through user<first>..user<first+count-1>. */
  users?: { first: number; count: number };
  seconds: number;
  connections: number;
  threads: number;
  workDir: string;
  /** When given (and it pins), wrk runs on the cores of everything but the node(s). */
  pin?: PinPlan;
}): Promise<WrkResult> {
  const script = path.join(opts.workDir, `wrk-${opts.kind}.lua`);
  fs.writeFileSync(script, LUA[opts.kind]);
  const scriptArgs = opts.kind === 'get' ? [opts.path ?? '/', ...(opts.cookieFile ? [opts.cookieFile] : [])] : [String(opts.users?.first ?? 1), String(opts.users?.count ?? 100)];
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency', '--timeout', '5s', '-s', script, opts.url, '--', ...scriptArgs];
  const [cmd, cmdArgs] = opts.pin ? pinnedCommand(opts.pin, opts.pin.rest, requireWrk(), args) : [requireWrk(), args];
  // Run under bash so that `times` can report wrk's CPU time once it has exited.
  const { stdout } = await promisify(execFile)('bash', ['-c', '"$0" "$@"; status=$?; times; exit $status', cmd, ...cmdArgs], { timeout: (opts.seconds + 30) * 1000 });
  return { ...parseWrk(stdout), cpuUs: parseTimes(stdout) };
}
