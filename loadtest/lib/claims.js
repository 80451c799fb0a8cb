// What a run must show, defined once. Two readers use this module:
//   - k6 (loadtest/lib/thresholds.js): the thresholds, the only pass/fail on the docker and
//     hand-run paths (a failed threshold makes k6 exit 99);
//   - the failover experiment (services/cluster/src/experiment/report.ts): judge(), which also
//     sees what k6 cannot: which node was killed, what it held, when, and each failure's VU.
// Plain JavaScript with no k6 or Node import, so both runtimes load the same file.
//
// Words, as survival.js records them:
//   lost session    a 401 on a session that was valid (a VU never logs out); sessions_lost, tagged
//                   with `node` (the node that last served the session), `answered_by` (the node
//                   that answered 401), `answer` (`home` when those are the same node: a live node
//                   forgot a session it held; `other` when not: the session's node was unreachable
//                   or the route moved) and `vu`
//   failed request  a 5xx, a network error (status 0) or an unexpected 4xx; failed_requests, tagged
//                   `kind` (login/read/write), `status`, `class` (network/5xx/4xx) and `vu`
//   check           identity (same user and loginAt as at login) and counters (never go back)

import { DEFAULT_FAULT, FAULTS, isStoreFault, STORE_FAULTS } from './faults.js';

/** The numbers the claims allow. */
export const LIMITS = Object.freeze({
  /**
   * Failed reads tolerated when a node is killed, as a fraction of reads. nginx replays a GET on
   * the next node when the connect is refused or the connection breaks before a response header;
   * the tolerance covers a node dying after nginx read the header but before the body.
   */
  readFailureRate: 0.001,
  /** Failed writes tolerated per VU and kill: the POST it may have had in flight on the dying node
   *  (nginx does not replay a POST it has sent). */
  writeFailuresPerVu: 1,
  /** A failure counts as "around the kill" from `killSlackS` before to `killWindowS` after it. */
  killWindowS: 5,
  killSlackS: 0.5,
  /**
   * nginx's fail_timeout (infra/nginx/render.sh, 5 s) plus a margin: once the restarted node is
   * ready, nginx sends it traffic again within this long. A sticky run that lasts this long after
   * the readiness shows that nobody is sent back to it (and lost a second time): their route
   * cookies were re-pinned to the node that answered them during the outage.
   */
  returnWithinS: 7,
  /**
   * A lost host (swarm): requests that need no session fail only while the way in notices it (the
   * front skips a host that refuses or does not answer a connect within 1 s; nginx retries a GET on
   * another replica): none sent later than this after the fault.
   */
  hostRetryS: 5,
  /** A lost host (swarm): session writes work again within this long of the fault. */
  writesBackWithinS: 10,
});

/**
 * Faults of the shared store rather than of a node (lib/faults.js: `store`). Every node is alive
 * throughout, so every failure must be a node's own JSON 503 + Retry-After for a session request
 * (never nginx's 502), and a route that needs no session (`kind: noSession`, GET /api/ping) must
 * never fail.
 */
export { isStoreFault, STORE_FAULTS };

/** The worst class of a failed request's status: network (0), 5xx or 4xx. */
export function failureClass(status) {
  const s = Number(status);
  if (s === 0) return 'network';
  if (s >= 500) return '5xx';
  return '4xx';
}

/**
 * How many sessions one VU may lose in a run: none without a kill or in shared mode; in sticky
 * mode one per kill (the VUs whose node died), restart or not: the route cookie is re-pinned to
 * the node that answered during the outage (infra/nginx/render.sh), so the restarted node does not
 * take its old clients back without their sessions.
 */
export function lossesPerVu({ mode, kill }) {
  return mode === 'sticky' && kill ? 1 : 0;
}

/**
 * k6 thresholds for a run. `vus` is the profile's (peak) number of VUs: every one of them must log
 * in at least once, since a run in which nobody logs in has empty metrics, and empty metrics pass.
 * `kill`: a node is killed during the run (whether it is started again changes nothing: a sticky
 * user is lost once either way, see lossesPerVu).
 *
 * What k6 cannot hold (it does not know which node was killed, what it held, nor when): the
 * experiment's judge() below holds the rest.
 */
export function k6Thresholds({ mode, kill, vus, fault = DEFAULT_FAULT }) {
  const t = {
    // Identity and counters are all-or-nothing: a session continues correctly or is gone (401).
    'checks{check:identity}': ['rate==1'],
    'checks{check:counters}': ['rate==1'],
    // Every VU logged in.
    sessions_started: [`count>=${vus}`],
    // Logins never fail; a 4xx other than 401 on a session is never a node's failure.
    'failed_requests{kind:login}': ['count==0'],
    'failed_requests{class:4xx}': ['count==0'],
  };
  if (!kill) {
    // Nothing is killed: nothing fails, nothing is lost, every answer continues its session.
    t.failed_requests = ['count==0'];
    t.sessions_lost = ['count==0'];
    t.session_continuity = ['rate==1'];
    return t;
  }
  if (isStoreFault(fault)) {
    // Session requests answer 503 while the store is away (no bound: that is the outage), but never
    // a 502, and nothing that needs no session fails. With AOF a restart loses no session; a
    // primary kill may lose what the replicas had not received yet (reported, not judged), and so
    // may acknowledged writes of the last second: the counter check is reported, not held.
    delete t['checks{check:counters}'];
    t['failed_requests{kind:noSession}'] = ['count==0'];
    t['failed_requests{status:502}'] = ['count==0'];
    t['failed_requests{class:network}'] = ['count==0'];
    if (FAULTS[fault].keepsSessions) t.sessions_lost = ['count==0'];
    return t;
  }
  // A drained node (SIGTERM) finishes what it has before it exits: nothing may fail.
  if (FAULTS[fault].failsNone) t.failed_requests = ['count==0'];
  if (FAULTS[fault].swarm) {
    // The swarm's faults: when and how much may fail is the judge's (it knows when and which host);
    // k6 holds what needs no timing. A partial partition may lose acknowledged writes (measured).
    if (FAULTS[fault].victim === 'primary-host') delete t['checks{check:counters}'];
    else if (mode !== 'sticky') t.sessions_lost = ['count==0'];
    // A lost host may hold the Redis primary, and every mode keeps its login budgets there: logins
    // answer 503 until a replica is promoted, like session writes (the judge's writes-back rule).
    if (FAULTS[fault].victim === 'host') delete t['failed_requests{kind:login}'];
    return t;
  }
  t['failed_requests{kind:write}'] = [`count<=${vus * LIMITS.writeFailuresPerVu}`];
  t['http_req_failed{kind:read}'] = [`rate<=${LIMITS.readFailureRate}`];
  // Every mode but sticky keeps sessions where a node's death cannot reach them: a shared store
  // (shared, database) or the client itself (cookie, jwt). Nothing may be lost.
  if (mode !== 'sticky') {
    t.sessions_lost = ['count==0'];
    t.session_continuity = ['rate==1'];
    return t;
  }
  // Sticky: sessions ARE lost, but only those of the killed node. k6 learns what that node held
  // only after it started (thresholds are fixed at init), so it holds the per-session form: no
  // live node ever answers 401 for a session it holds, and no VU loses more than its share.
  const perVu = lossesPerVu({ mode, kill });
  t.sessions_lost = ['count>0', `count<=${vus * perVu}`];
  t['sessions_lost{answer:home}'] = ['count==0'];
  t.sessions_lost_beyond_share = ['count==0'];
  return t;
}

const count = (xs, pred) => xs.filter(pred).length;

/** Problems with the failed requests of a run in which a node was killed (see LIMITS). */
function failureProblems(r) {
  const problems = [];
  const failures = r.failures;
  const bad = failures.filter((f) => failureClass(f.status) === '4xx');
  if (bad.length)
    problems.push(`${bad.length} failed request(s) with a 4xx (${[...new Set(bad.map((f) => f.status))].join(', ')}): only network errors and 5xx may come from a dying node`);
  const from = r.killAtS - LIMITS.killSlackS;
  const to = r.killAtS + LIMITS.killWindowS;
  const away = failures.filter((f) => f.t < from || f.t > to);
  if (away.length)
    problems.push(
      `${away.length} failed request(s) away from the kill (at ${away
        .slice(0, 5)
        .map((f) => `${f.t.toFixed(1)}s`)
        .join(', ')}; the kill was at ${r.killAtS}s)`,
    );
  const logins = count(failures, (f) => f.kind === 'login');
  if (logins) problems.push(`${logins} failed login(s)`);
  const writesByVu = {};
  for (const f of failures) if (f.kind === 'write') writesByVu[f.vu] = (writesByVu[f.vu] ?? 0) + 1;
  const over = Object.entries(writesByVu).filter(([, n]) => n > LIMITS.writeFailuresPerVu);
  if (over.length) problems.push(`VU(s) ${over.map(([vu, n]) => `${vu} (${n})`).join(', ')} failed more than ${LIMITS.writeFailuresPerVu} write(s)`);
  const reads = count(failures, (f) => f.kind === 'read');
  const tol = Math.floor(r.requestsByKind.read * LIMITS.readFailureRate);
  if (reads > tol) problems.push(`${reads} failed read(s) > ${tol} (${LIMITS.readFailureRate * 100} % of ${r.requestsByKind.read})`);
  return problems;
}

/** Problems with k6's own verdict: it ran every threshold this module defines, and all passed. */
function k6Problems(r) {
  const problems = [];
  if (r.k6.exitCode !== 0) problems.push(`k6 exited with ${r.k6.exitCode}${r.k6.exitCode === 99 ? ' (a threshold failed)' : ''}`);
  const expected = k6Thresholds({ mode: r.mode, kill: r.killedNode !== null, restart: r.restartAtS !== null, vus: r.vus, fault: r.fault });
  const missing = [];
  for (const [metric, sources] of Object.entries(expected)) for (const s of sources) if (!(r.k6.thresholds[metric]?.[s] !== undefined)) missing.push(`${metric}: ${s}`);
  if (missing.length) problems.push(`k6 did not run the threshold(s) ${missing.join('; ')}`);
  const failed = [];
  for (const [metric, sources] of Object.entries(r.k6.thresholds)) for (const [s, ok] of Object.entries(sources)) if (!ok) failed.push(`${metric}: ${s}`);
  if (failed.length) problems.push(`k6 threshold(s) failed: ${failed.join('; ')}`);
  return problems;
}

/**
 * The claim of a failover run, and whether its numbers hold it. Input: the experiment's run summary
 * (RunSummary in services/cluster/src/experiment/report.ts): times in seconds since k6's first
 * sample; `failures` and `losses` one entry per event; `killedNodeSessions` what the killed node
 * said it held just before the kill (null: it could not be read); `killedNodeServedBeforeKill` the
 * requests it answered before the kill (from k6's samples); `endS` the run's last second;
 * `k6.thresholds` metric -> threshold source -> passed.
 * Returns { expected, held, why, problems }.
 */
export function judge(r) {
  const problems = [];
  if (r.checkFailures > 0) problems.push(`${r.checkFailures} identity/counter check(s) failed (a session continued wrongly)`);

  if (isStoreFault(r.fault)) return judgeStoreFault(r);
  if (r.fault && FAULTS[r.fault].swarm) return judgeSwarmFault(r);
  if (r.killedNode === null) {
    if (r.sessionsLost > 0) problems.push(`${r.sessionsLost} session(s) lost`);
    if (r.failures.length > 0) problems.push(`${r.failures.length} request(s) failed`);
    if (r.sessionsTotal !== r.vus) problems.push(`${r.sessionsTotal} login(s) for ${r.vus} VUs (one each expected)`);
    problems.push(...k6Problems(r));
    return verdict('no node killed: no session lost, no request failed, one login per VU', problems, `nothing lost, nothing failed, ${r.sessionsTotal} sessions`);
  }

  problems.push(...failureProblems(r));
  problems.push(...k6Problems(r));
  const outageEnd = r.readyAtS ?? r.endS + 1;
  const before = r.losses.filter((l) => l.t < r.killAtS);
  const during = r.losses.filter((l) => l.t >= r.killAtS && l.t < outageEnd);
  const after = r.readyAtS === null ? [] : r.losses.filter((l) => l.t >= r.readyAtS);
  if (before.length) problems.push(`${before.length} session(s) lost before the kill`);

  if (r.mode !== 'sticky') {
    if (r.sessionsLost > 0) problems.push(`${r.sessionsLost} session(s) lost`);
    // SIGTERM drains the node (it stops taking connections, finishes what it has, then exits):
    // unlike a SIGKILL, no request is in flight on it when it goes.
    if (FAULTS[r.fault ?? DEFAULT_FAULT].failsNone && r.failures.length) problems.push(`${r.failures.length} request(s) failed while ${r.killedNode} drained (a drain fails none)`);
    if (!(r.killedNodeServedBeforeKill > 0)) problems.push(`${r.killedNode} served no request before the kill: killing it tested nothing`);
    if (r.sessionsTotal !== r.vus) problems.push(`${r.sessionsTotal} login(s) for ${r.vus} VUs (one each expected: no session is ever lost)`);
    const f = r.failures;
    if (FAULTS[r.fault ?? DEFAULT_FAULT].failsNone)
      return verdict(
        `every session survives the SIGTERM of ${r.killedNode}, which drains: 0 lost, one login per VU, no request failed`,
        problems,
        `0 lost of ${r.sessionsTotal}; 0 requests failed`,
      );
    return verdict(
      `every session survives the SIGKILL of ${r.killedNode}: 0 lost, one login per VU; failures only network errors or 5xx within ${LIMITS.killWindowS} s of the kill, at most ${LIMITS.writeFailuresPerVu} write per VU (a POST already sent to the dying node is not replayed), reads <= ${LIMITS.readFailureRate * 100} % (nginx replays GETs), no login`,
      problems,
      `0 lost of ${r.sessionsTotal}; ${count(f, (x) => x.kind === 'read')} failed read(s), ${count(f, (x) => x.kind === 'write')} failed write(s), all within ${LIMITS.killWindowS} s of the kill`,
    );
  }

  // Sticky.
  const held = r.killedNodeSessions;
  if (held === null || held === undefined) problems.push(`what ${r.killedNode} held could not be read: the claim cannot be checked`);
  else if (!(held > 0)) problems.push(`${r.killedNode} held no session: killing it tested nothing`);
  else if (during.length !== held) problems.push(`${during.length} session(s) lost during the outage, but ${r.killedNode} held ${held}`);
  const elsewhere = during.filter((l) => l.node !== r.killedNode);
  if (elsewhere.length) problems.push(`${elsewhere.length} session(s) of other nodes lost during the outage (${[...new Set(elsewhere.map((l) => l.node))].join(', ')})`);
  const twiceDuring = Object.entries(tally(during.map((l) => l.vu))).filter(([, n]) => n > 1);
  if (twiceDuring.length) problems.push(`VU(s) ${twiceDuring.map(([vu]) => vu).join(', ')} lost more than once during the outage`);
  const homeAnswers = r.losses.filter((l) => l.answer === 'home');
  if (homeAnswers.length) problems.push(`${homeAnswers.length} 401(s) from the node that held the session (a live node forgot a session)`);
  // Between the readiness and the end: nobody. The users the killed node held were re-pinned to
  // the nodes that answered them during the outage, and stay there when it comes back.
  if (after.length) problems.push(`${after.length} session(s) lost after the restart (a route cookie led back to the restarted node)`);
  const between = r.losses.length - before.length - during.length - after.length;
  if (between) problems.push(`${between} session(s) lost at another time`);
  if (r.sessionsTotal < r.vus + during.length || r.sessionsTotal > r.vus + r.sessionsLost)
    problems.push(`${r.sessionsTotal} login(s): expected one per VU and one after each loss (${r.vus} + ${r.sessionsLost})`);
  return verdict(
    `the sessions held by ${r.killedNode} (${held ?? '?'}) are lost when it is SIGKILLed and nobody else's; ` +
      (r.readyAtS !== null ? `once it is back, nobody loses a session again (route cookies were re-pinned to the nodes that answered); ` : '') +
      `failures as in shared mode`,
    problems,
    `${during.length} lost during the outage (${r.killedNode} held ${held})` + (r.readyAtS !== null ? ', 0 after its restart' : '') + `; 0 lost on other nodes`,
  );
}

/**
 * A store fault: every failure a JSON 503 from a live node (never a 502 or a network error), within
 * the outage (from the kill until `killWindowS` after the store is back), nothing needing no
 * session failed, and with AOF no session lost across a Redis restart.
 */
function judgeStoreFault(r) {
  const problems = [...k6Problems(r)];
  const back = r.readyAtS ?? r.endS;
  const notOwn = r.failures.filter((f) => f.status !== '503');
  if (notOwn.length) problems.push(`${notOwn.length} failure(s) other than a node's 503 (${[...new Set(notOwn.map((f) => f.status))].join(', ')})`);
  const noSession = r.failures.filter((f) => f.kind === 'noSession');
  if (noSession.length) problems.push(`${noSession.length} request(s) that need no session failed`);
  const outside = r.failures.filter((f) => f.t < r.killAtS - LIMITS.killSlackS || f.t > back + LIMITS.killWindowS);
  if (outside.length) problems.push(`${outside.length} failure(s) outside the outage (first at ${outside[0].t.toFixed(1)}s)`);
  const keepsSessions = FAULTS[r.fault].keepsSessions;
  if (keepsSessions && r.sessionsLost > 0) problems.push(`${r.sessionsLost} session(s) lost across the Redis restart`);
  return verdict(
    `${r.fault} of ${r.killedNode}: session requests answer a node's 503 while the store is away, never a 502; nothing that needs no session fails` +
      (keepsSessions ? '; no session lost (AOF)' : '; sessions lost are reported'),
    problems,
    `${r.failures.length} session request(s) answered 503 during ${r.writeOutageS ?? 0} s of failed writes; 0 failed without a session; ${r.sessionsLost} session(s) lost, ${r.acknowledgedWritesLost ?? 0} acknowledged write(s) lost`,
  );
}

/**
 * A fault of the swarm (lib/faults.js `swarm`). A lost host (killed or cut off): in shared mode no
 * session is lost, requests that need no session sent later than `hostRetryS` after the fault never
 * fail, and session writes sent later than `writesBackWithinS` after it never fail (when the host
 * comes back, how long its return fails writes is reported, not judged); in sticky mode exactly the sessions of the
 * app replicas on that host are lost, nobody else's. An update or a drain fails nothing. A partial
 * partition (the Redis primary's host cut off from the others) loses no acknowledged write when the
 * nodes WAIT for a replica (REDIS_WAIT_REPLICAS=1) and Redis runs min-replicas-to-write; otherwise
 * the loss is measured and reported.
 */
function judgeSwarmFault(r) {
  const f = FAULTS[r.fault];
  const problems = [...k6Problems(r)];
  const before = r.failures.filter((x) => x.t < r.killAtS - LIMITS.killSlackS);
  if (before.length) problems.push(`${before.length} request(s) failed before the fault`);
  const bad = r.failures.filter((x) => failureClass(x.status) === '4xx');
  if (bad.length) problems.push(`${bad.length} failed request(s) with a 4xx (${[...new Set(bad.map((x) => x.status))].join(', ')})`);
  const recovered = r.swarmRecoveryS === null || r.swarmRecoveryS === undefined ? 'not within the run' : `${r.swarmRecoveryS} s`;
  if (f.failsNone) {
    if (r.failures.length) problems.push(`${r.failures.length} request(s) failed during the ${r.fault} (it fails none)`);
    if (r.mode !== 'sticky' && r.sessionsLost > 0) problems.push(`${r.sessionsLost} session(s) lost`);
    return verdict(
      `${r.fault}${r.killedNode !== 'app' ? ` of ${r.killedNode}` : ''}: no request of any kind fails` +
        (r.mode !== 'sticky' ? ', no session is lost' : ' (sticky: the replaced replicas take their sessions with them, reported)'),
      problems,
      `0 of ${r.requests} requests failed; ${r.sessionsLost} session(s) lost; converged in ${recovered}`,
    );
  }
  if (f.victim === 'primary-host') {
    // Both guards: the nodes WAIT for a replica to hold each write (nothing the old primary alone
    // has is acknowledged), and the old primary refuses what it is sent once it has heard from no
    // replica for a while (min-replicas-to-write; GETEX, a read's command, included), so nothing it
    // holds is read back after the heal either, before the Sentinels demote it. With WAIT alone, those
    // stale reads show as acknowledged writes missing; with neither guard, the writes are lost.
    const wait = Number(r.nodeSettings?.REDIS_WAIT_REPLICAS ?? 0);
    const args = r.redisArgs ?? [];
    const at = args.indexOf('--min-replicas-to-write');
    const minReplicas = at >= 0 ? Number(args[at + 1]) || 0 : 0;
    const guarded = wait > 0 && minReplicas > 0;
    if (guarded && r.acknowledgedWritesLost > 0)
      problems.push(`${r.acknowledgedWritesLost} acknowledged write(s) missing with REDIS_WAIT_REPLICAS=${wait} and min-replicas-to-write ${minReplicas}`);
    return verdict(
      `partial partition of ${r.killedNode} (the Redis primary's host): ` +
        (guarded
          ? 'no acknowledged write is missing (the nodes WAIT for a replica, and the old primary refuses commands once it hears from none)'
          : `acknowledged writes missing are measured (REDIS_WAIT_REPLICAS=${wait}, min-replicas-to-write ${minReplicas})`),
      problems,
      `${r.acknowledgedWritesLost ?? 0} acknowledged write(s) missing, ${r.readsWentBack ?? 0} read(s) went back (stale, or dirty and rolled back), ${r.sessionsLost} session(s) lost, ${r.failures.length} request(s) failed`,
    );
  }
  // By when they were sent: one sent at the fault to the lost host may wait out its timeout.
  const late = r.failures.filter((x) => x.kind === 'noSession' && (x.sent ?? x.t) > r.killAtS + LIMITS.hostRetryS);
  if (late.length)
    problems.push(
      `${late.length} request(s) that need no session, sent more than ${LIMITS.hostRetryS} s after the fault, failed (first sent at ${(late[0].sent ?? late[0].t).toFixed(1)}s)`,
    );
  if (r.writesBackAfterS !== null && r.writesBackAfterS > LIMITS.writesBackWithinS)
    problems.push(`a session write sent ${r.writesBackAfterS} s after the fault still failed (writes back within ${LIMITS.writesBackWithinS} s expected)`);
  const lostNodes = r.lostNodes ?? [];
  if (!lostNodes.length) problems.push(`${r.killedNode} ran no app replica: losing it tested nothing`);
  if (r.mode !== 'sticky') {
    if (r.sessionsLost > 0) problems.push(`${r.sessionsLost} session(s) lost`);
    if (r.sessionsTotal !== r.vus) problems.push(`${r.sessionsTotal} login(s) for ${r.vus} VUs (one each expected: no session is ever lost)`);
    return verdict(
      `${r.fault} of ${r.killedNode} (${lostNodes.join(', ') || 'no replica'}): 0 sessions lost; requests that need no session fail only within ${LIMITS.hostRetryS} s; session writes work again within ${LIMITS.writesBackWithinS} s`,
      problems,
      `0 lost of ${r.sessionsTotal}; ${r.failures.length} failed request(s) (${count(r.failures, (x) => x.kind === 'noSession')} without a session); writes back after ${r.writesBackAfterS ?? 0} s; replicas back after ${recovered}` +
        (r.writesBackAfterRestoreS ? `; when ${r.killedNode} came back, writes failed for ${r.writesBackAfterRestoreS} s more` : ''),
    );
  }
  const held = r.killedNodeSessions;
  const outageEnd = r.readyAtS ?? r.endS + 1;
  const during = r.losses.filter((l) => l.t >= r.killAtS && l.t < outageEnd);
  if (held === null || held === undefined) problems.push(`what ${lostNodes.join(', ')} held could not be read: the claim cannot be checked`);
  else if (!(held > 0)) problems.push(`${lostNodes.join(', ')} held no session: losing ${r.killedNode} tested nothing`);
  else if (during.length !== held) problems.push(`${during.length} session(s) lost during the outage, but ${lostNodes.join(', ')} held ${held}`);
  const elsewhere = r.losses.filter((l) => !lostNodes.includes(l.node));
  if (elsewhere.length) problems.push(`${elsewhere.length} session(s) of replicas on other hosts lost (${[...new Set(elsewhere.map((l) => l.node))].join(', ')})`);
  const twice = Object.entries(tally(r.losses.map((l) => l.vu))).filter(([, n]) => n > 1);
  if (twice.length) problems.push(`VU(s) ${twice.map(([vu]) => vu).join(', ')} lost more than once`);
  return verdict(
    `${r.fault} of ${r.killedNode}: the sessions held by its replicas (${lostNodes.join(', ')}: ${held ?? '?'}) are lost, nobody else's; requests that need no session fail only within ${LIMITS.hostRetryS} s; logins work again within ${LIMITS.writesBackWithinS} s`,
    problems,
    `${during.length} lost (${lostNodes.join(', ')} held ${held}); 0 on other hosts; replicas back after ${recovered}`,
  );
}

function tally(keys) {
  const out = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

function verdict(expected, problems, ok) {
  return { expected, held: problems.length === 0, why: problems.length ? problems.join('; ') : ok, problems };
}
