/**
 * The simulator (src/sim/) must drive the daemons' own relay code: a change of a relay rule made through the real
 * class (an AnnouncementRelay option, or the class's method itself) must change its output, and a run must be a
 * function of its seed. Small topologies, a few seconds in all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runRelaySim, type RelaySimOptions, type RelaySimResult } from '../../src/sim/index.js';
import { AnnouncementRelay, AnnouncementDirectory } from '../../src/relay/index.js';

const SMALL: RelaySimOptions = {
  nodes: 3000,
  reachable: 0.2,
  adoption: 0.1,
  relays: 4,
  relaysPerNode: 2,
  announcers: 40,
  durationS: 900,
  seed: 'test',
  announceIntervalS: 300,
  observers: 200,
  getaddrS: 0, // push only: these tests look at the relay's gossip rules
};

const strip = (r: RelaySimResult): Omit<RelaySimResult, 'wallMs'> => {
  const { wallMs: _w, ...rest } = r;
  return rest;
};

test('same seed, same result; another seed, another network', () => {
  const a = runRelaySim(SMALL);
  const b = runRelaySim(SMALL);
  assert.deepEqual(strip(a), strip(b));
  const c = runRelaySim({ ...SMALL, seed: 'other' });
  assert.notDeepEqual(strip(a).coverage, strip(c).coverage);
  assert.ok(a.coverage.series.length === 15, `one sample a minute, got ${a.coverage.series.length}`);
});

test('a relay option passed to the real AnnouncementRelay changes what the simulator measures', () => {
  const base = runRelaySim(SMALL);
  assert.ok(base.coverage.steady > 0, 'announcements reach some observers with the defaults');
  // fanout 0: the real relay forwards nothing, so only an announcer's own relays ever hold its entry.
  const none = runRelaySim({ ...SMALL, relayOptions: { fanout: 0 } });
  assert.equal(none.coverage.steady, 0);
  assert.equal(none.drops.duplicate, 0);
  const wide = runRelaySim({ ...SMALL, relayOptions: { fanout: 8 } });
  const msg = `fanout 8 ${wide.coverage.steady} vs 2 ${base.coverage.steady}`;
  assert.ok(wide.coverage.steady > base.coverage.steady * 1.5, msg);
  // The token bucket is the relay's: starving it shows up as rate-limited drops counted by the real class.
  const starved = runRelaySim({ ...SMALL, relayOptions: { bucketCapacity: 1, ratePerSec: 0.001 } });
  assert.ok(starved.drops.rateLimited > 0 && base.drops.rateLimited === 0);
});

test('every delivered message goes through AnnouncementRelay.prototype.onAddrV2 and the real directory', () => {
  const proto = AnnouncementRelay.prototype;
  const orig = proto.onAddrV2;
  const addOrig = AnnouncementDirectory.prototype.add;
  let calls = 0;
  let adds = 0;
  proto.onAddrV2 = function (this: AnnouncementRelay, ...args: Parameters<typeof orig>) {
    calls++;
    return orig.apply(this, args);
  };
  AnnouncementDirectory.prototype.add = function (this: AnnouncementDirectory, ...args: Parameters<typeof addOrig>) {
    adds++;
    return addOrig.apply(this, args);
  };
  try {
    const r = runRelaySim(SMALL);
    assert.ok(calls > 100, `onAddrV2 called ${calls} times`);
    assert.ok(adds > 100, `directory add called ${adds} times`);
    // A rule change in the class itself (here: forward nothing) shows in the output.
    proto.onAddrV2 = function (this: AnnouncementRelay, ...args: Parameters<typeof orig>) {
      const d = orig.apply(this, args);
      d.forward.clear();
      return d;
    };
    const changed = runRelaySim(SMALL);
    assert.notDeepEqual(strip(changed).coverage, strip(r).coverage);
    assert.equal(changed.coverage.steady, 0);
  } finally {
    proto.onAddrV2 = orig;
    AnnouncementDirectory.prototype.add = addOrig;
  }
});

test('the simulator imports the relay module and has no relay logic of its own', () => {
  const src = readFileSync(fileURLToPath(new URL('../../../src/sim/relay-sim.ts', import.meta.url)), 'utf8');
  assert.match(src, /from '\.\.\/relay\/index\.js'/);
  assert.doesNotMatch(src, /createHmac|class \w*(Relay|Directory)|isFresh|tryTake/);
});

test('onionpunch sim relay --json: the last line has the fields issue 13 asks for; bad flags are usage errors', () => {
  const bin = fileURLToPath(new URL('../../../bin/onionpunch.js', import.meta.url));
  const args = ['sim', 'relay', '--nodes', '2000', '--announcers', '20', '--duration', '5m'];
  args.push('--adoption', '0.1,0.2', '--json');
  const out = execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 2);
  const last = JSON.parse(lines[1]!) as RelaySimResult;
  assert.equal(last.nodes, 2000);
  assert.equal(last.adoption, 0.2);
  assert.equal(last.params.announceIntervalS, 300, "the daemon's announceinterval default");
  for (const k of ['p50Ms', 'p90Ms', 'at10min'] as const) assert.ok(k in last.coverage, k);
  for (const k of ['mean', 'p99', 'max'] as const) assert.equal(typeof last.perNodeMsgsPerHour[k], 'number');
  const bad = spawnSync(process.execPath, [bin, 'sim', 'relay', '--nodes', 'many'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--nodes/);
  const unknown = spawnSync(process.execPath, [bin, 'sim', 'relay', '--fanotu', '3'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
  const help = spawnSync(process.execPath, [bin, 'sim', 'relay', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--relays-per-node/);
});

test('explicit topology: pull reaches an observer on the other relay; the real GetaddrMeter refuses asks too close', () => {
  const topology = {
    relays: 2,
    relayLinks: [[0, 1]] as [number, number][],
    nodes: [
      { relays: [0], announce: true, startS: 0 },
      { relays: [1], observe: true },
      { relays: [0, 1], observe: true },
    ],
  };
  const base = {
    nodes: 0,
    reachable: 0,
    adoption: 1,
    relays: 2,
    relaysPerNode: 2,
    announcers: 1,
    durationS: 120,
    seed: 't',
    announceIntervalS: 30,
    trickleS: 0,
    topology,
    sampleS: 10,
  };
  const pull = runRelaySim({ ...base, getaddrS: 10, getaddrSpacingS: 5 });
  assert.equal(pull.topology.relays, 2);
  assert.equal(pull.coverage.pairDelaysMs!.length, 2);
  assert.ok(
    pull.coverage.pairDelaysMs!.every((d) => d !== null && d < 25_000),
    JSON.stringify(pull.coverage),
  );
  assert.equal(pull.drops.getaddrLimited, 0);
  // No push (fanout 0) and no pull: the observer on relay 1 never hears of the announcer on relay 0.
  const none = runRelaySim({ ...base, getaddrS: 0, relayOptions: { fanout: 0 } });
  assert.ok(none.coverage.pairDelaysMs!.includes(null));
  // A spacing longer than the pull period: the relay's GetaddrMeter refuses every other ask.
  const spaced = runRelaySim({ ...base, getaddrS: 10, getaddrSpacingS: 15 });
  assert.ok(spaced.drops.getaddrLimited > 0);
});
