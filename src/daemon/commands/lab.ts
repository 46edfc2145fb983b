/**
 * `onionpunch lab ...`: the NAT lab from the command line.
 *
 *   lab up [--sites N] [--nat-a SPEC] [--nat-b SPEC] ... [--delay 25ms] [--jitter 5ms] [--loss 1%]
 *          [--public-hosts N] [--extra-public-hosts N] [--json]
 *       SPEC is a comma list of: eim | eim-shift | edm (mapping), drop | rst | icmp (unsolicited inbound),
 *       cgnat, fw6; e.g. `--nat-b edm,rst`. Builds the lab, prints its name and address plan, and exits with
 *       the lab left up (state in /run/onionpunch-lab/<name>.json).
 *   lab exec [--lab NAME] NODE -- CMD...      run CMD inside NODE (a, b, a-router, a-carrier, core1, pub1, ...)
 *   lab status [--json]                       list labs, their owners and namespaces
 *   lab down [NAME] | --all [--json]          remove one lab (no NAME: the only detached one), or every lab whose owner
 *                                             is gone or detached (the reaper)
 *   lab selftest [--delay 20ms] [--loss 10%] [--json]   build every behaviour and measure it from inside
 *   lab matrix ...                            every NAT pair over a private Tor network (commands/lab-matrix.ts)
 *   lab stress ...                            many concurrent punches, measured, under faults (commands/lab-stress.ts)
 * The site specs and units are parsed by the lab's own parsers (src/lab/topology/spec.ts), as the demo's are.
 */
import { spawn } from 'node:child_process';
import { UsageError } from '../../errors.js';
import { dispatch, flag, integer, parseCommand, text, value, type Options, type Option } from '../args.js';
import { Lab, downByState, listNamespaces, reapLabs, describePlan } from '../../lab/topology/lab.js';
import { LabError } from '../../lab/errors.js';
import { ensurePrereqs } from '../../lab/prereqs.js';
import {
  parseDuration,
  parsePercent,
  parseSiteBehaviour,
  type LabSpec,
  type SiteBehaviourSpec,
} from '../../lab/topology/spec.js';
import { ownerAlive, readAllStates, stateFile, type LabState } from '../../lab/topology/state.js';
import { runSelftest } from '../../lab/topology/selftest.js';

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const SPEC_WORDS = 'eim|eim-shift|edm|edm-pba, drop|rst|icmp, cgnat, fw6';

/** `--nat-a` ... `--nat-z`: one per possible site; only the first two are listed in --help. */
const NAT_OPTIONS: Record<string, Option<SiteBehaviourSpec | undefined>> = Object.fromEntries(
  [...LETTERS].map((l, i) => [
    `nat-${l}`,
    i === 0
      ? value('SPEC', `site a's behaviour: comma list of ${SPEC_WORDS} (e.g. edm,rst)`, parseSiteBehaviour)
      : {
          ...value('SPEC', i === 1 ? "site b's behaviour; --nat-c ... --nat-z likewise" : '', parseSiteBehaviour),
          hidden: i > 1,
        },
  ]),
);

const NO_INSTALL = flag('do not install missing packages (apt-get); print the command and stop');

const UP = {
  name: 'lab up',
  summary:
    'Builds a NAT lab (sites a, b, ... behind nftables NATs, public hosts, two core routers) in network\n' +
    'namespaces and leaves it up; prints its name and address plan. Needs root.',
  options: {
    sites: value('N', 'number of home sites, 1..26 (default 2)', integer(1, 26), 2),
    ...NAT_OPTIONS,
    delay: value('MS', 'one-way delay per site access link, e.g. 25ms or 0.5s (default 0)', (s: string) =>
      parseDuration(s),
    ),
    jitter: value('MS', 'jitter per access link (default 0)', (s: string) => parseDuration(s)),
    loss: value('PCT', 'loss per access link and direction, e.g. 1% (default 0)', (s: string) => parsePercent(s)),
    'public-hosts': value('N', 'public hosts for NAT-check services, 0..40 (default 2)', integer(0, 40)),
    'extra-public-hosts': value('N', 'more public hosts (Tor relays, I2P routers), 0..40 (default 0)', integer(0, 40)),
    'no-install': NO_INSTALL,
    json: flag('print the plan as JSON'),
  } satisfies Options,
};

/** Parses `lab up` options into a LabSpec (exported for unit tests). Returns null after printing --help. */
export function parseUpArgs(args: string[]): { spec: LabSpec; json: boolean; install: boolean } | null {
  const p = parseCommand(UP, args);
  if (p === null) return null;
  const v = p.values;
  const spec: LabSpec = { sites: [] };
  if (v.delay !== undefined) spec.delayMs = v.delay;
  if (v.jitter !== undefined) spec.jitterMs = v.jitter;
  if (v.loss !== undefined) spec.lossPct = v.loss;
  if (v['public-hosts'] !== undefined) spec.publicHosts = v['public-hosts'];
  if (v['extra-public-hosts'] !== undefined) spec.extraPublicHosts = v['extra-public-hosts'];
  for (let i = 0; i < v.sites; i++) spec.sites.push({ name: LETTERS[i]! });
  for (const [i, l] of [...LETTERS].entries()) {
    const b = (v as Record<string, unknown>)[`nat-${l}`] as SiteBehaviourSpec | undefined;
    if (b === undefined) continue;
    if (i >= v.sites) {
      throw new UsageError(`--nat-${l}: no site '${l}' (sites are a..${LETTERS[v.sites - 1]}; see --sites)`);
    }
    Object.assign(spec.sites[i]!, b);
  }
  return { spec, json: v.json, install: !v['no-install'] };
}

function print(json: boolean, obj: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(obj, null, 2) + '\n' : text + '\n');
}

function planText(d: ReturnType<typeof describePlan>): string {
  const lines = [`lab ${d.name} (namespace prefix ${d.prefix}, state ${d.stateFile})`];
  for (const c of d.cores) lines.push(`  ${c.key.padEnd(10)} ${c.ip} ${c.ip6}`);
  for (const s of Object.values(d.sites)) {
    const cond = [
      s.delayMs ? `delay ${s.delayMs}ms` : '',
      s.jitterMs ? `jitter ${s.jitterMs}ms` : '',
      s.lossPct ? `loss ${s.lossPct}%` : '',
    ]
      .filter(Boolean)
      .join(' ');
    lines.push(
      `  site ${s.name}: nat ${s.nat}, inbound ${s.inbound}` +
        `${s.cgnat ? ', cgnat' : ''}${s.ipv6 ? ', fw6' : ''}${cond ? ', ' + cond : ''} (core${s.core})`,
    );
    lines.push(
      `    ${s.router.key.padEnd(12)} wan ${s.router.wanIp}${s.router.wanIp6 ? ' ' + s.router.wanIp6 : ''}, lan ` +
        `${s.router.lanIp}`,
    );
    if (s.carrier) lines.push(`    ${s.carrier.key.padEnd(12)} wan ${s.carrier.wanIp}, lan ${s.carrier.lanIp}`);
    for (const h of s.hosts)
      lines.push(`    ${h.key.padEnd(12)} ${h.ip}${h.ip6 ? ' ' + h.ip6 : ''} (public ${s.publicIp})`);
  }
  for (const p of d.publicHosts)
    lines.push(`  ${p.key.padEnd(10)} ${p.ip} ${p.ip6}${p.extra ? ' (extra)' : ''} (core${p.core})`);
  return lines.join('\n');
}

function findLab(name: string | undefined): LabState {
  const states = readAllStates();
  if (name !== undefined) {
    const s = states.find((x) => x.prefix === name || x.prefix === `${name}-` || x.prefix.replace(/-$/, '') === name);
    if (!s) throw new LabError('LAB_NOT_FOUND', `no lab named '${name}' (see \`onionpunch lab status\`)`);
    return s;
  }
  if (states.length === 1) return states[0]!;
  throw new UsageError(
    states.length === 0
      ? 'no lab is up'
      : `several labs are up; pick one with --lab NAME (${states.map((s) => s.prefix.replace(/-$/, '')).join(', ')})`,
  );
}

async function cmdUp(args: string[]): Promise<number> {
  const p = parseUpArgs(args);
  if (p === null) return 0;
  const { spec, json } = p;
  await ensurePrereqs(['lab'], { what: 'onionpunch lab up', install: p.install });
  const lab = await Lab.up(spec, { detached: true });
  const d = lab.describe();
  print(
    json,
    { ...d, upMs: Math.round(lab.upMs) },
    `${planText(d)}\nup in ${lab.upMs.toFixed(0)} ms; remove with: onionpunch lab down ${d.name}`,
  );
  return 0;
}

const EXEC = {
  name: 'lab exec',
  summary: 'Runs CMD inside a lab node (a, b, a-router, a-carrier, core1, core2, pub1, ...) with `ip netns exec`.',
  operands: 'NODE -- CMD...',
  minOperands: 1,
  maxOperands: 1,
  passThroughAfter: 1,
  options: { lab: value('NAME', 'the lab (default: the only one up)', text), 'no-install': NO_INSTALL },
};

async function cmdExec(args: string[]): Promise<number> {
  const p = parseCommand(EXEC, args);
  if (p === null) return 0;
  const labName = p.values.lab;
  await ensurePrereqs(['lab'], { what: 'onionpunch lab exec', install: !p.values['no-install'] });
  if (p.rest.length === 0) throw new UsageError('lab exec: no command (lab exec [--lab NAME] NODE -- CMD...)');
  const cmd = p.rest;
  const rest = p.operands;
  const s = findLab(labName);
  const node = rest[0]!;
  const ns = s.namespaces.includes(node) ? node : s.prefix + node;
  if (!s.namespaces.includes(ns)) {
    throw new LabError(
      'LAB_UNKNOWN_NODE',
      `no node '${node}' in lab ${s.prefix.replace(/-$/, '')} (have: ` +
        `${s.namespaces.map((n) => n.slice(s.prefix.length)).join(', ')})`,
    );
  }
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'inherit' });
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

const STATUS = {
  name: 'lab status',
  summary: 'Lists the labs on this machine, their owners and namespaces.',
  options: { json: flag('one JSON object') },
};

async function cmdStatus(args: string[]): Promise<number> {
  const p = parseCommand(STATUS, args);
  if (p === null) return 0;
  const json = p.values.json;
  const present = new Set(await listNamespaces());
  const labs = readAllStates().map((s) => ({
    name: s.prefix.replace(/-$/, ''),
    prefix: s.prefix,
    stateFile: stateFile(s.prefix),
    ownerPid: s.ownerPid,
    ownerAlive: ownerAlive(s),
    detached: s.ownerPid === null,
    createdAt: s.createdAt,
    namespaces: s.namespaces.length,
    namespacesPresent: s.namespaces.filter((n) => present.has(n)).length,
    helperPids: s.helperPids,
    sites: s.plan.sites.map((x) => ({
      name: x.name,
      nat: x.nat,
      inbound: x.inbound,
      cgnat: x.cgnat,
      ipv6: x.ipv6,
      publicIp: x.publicIp,
    })),
  }));
  const text =
    labs.length === 0
      ? 'no labs'
      : labs
          .map((l) => {
            const owner = l.detached ? 'detached' : `${l.ownerPid} (${l.ownerAlive ? 'alive' : 'dead'})`;
            const sites = l.sites.map(
              (x) => `${x.name}=${x.nat}/${x.inbound}${x.cgnat ? '+cgnat' : ''}${x.ipv6 ? '+fw6' : ''}`,
            );
            const ns = `${l.namespacesPresent}/${l.namespaces} namespaces`;
            return `${l.name}: ${ns}, owner ${owner}, sites ${sites.join(' ')}`;
          })
          .join('\n');
  print(json, { labs }, text);
  return 0;
}

const DOWN = {
  name: 'lab down',
  summary:
    'Removes one lab (no NAME: the only one nobody owns), or with --all every lab whose owner is gone or\n' +
    'detached, and orphaned lab namespaces (the reaper).',
  operands: '[NAME]',
  maxOperands: 1,
  options: { all: flag('every lab without a live owner'), 'no-install': NO_INSTALL, json: flag('one JSON object') },
};

async function cmdDown(args: string[]): Promise<number> {
  const p = parseCommand(DOWN, args);
  if (p === null) return 0;
  const json = p.values.json;
  const names = p.operands;
  await ensurePrereqs(['lab'], { what: 'onionpunch lab down', install: !p.values['no-install'] });
  if (p.values.all) {
    if (names.length > 0) throw new UsageError('lab down: give NAME or --all, not both');
    const r = await reapLabs();
    print(
      json,
      r,
      `removed ${r.removedLabs.length} lab(s)${r.removedLabs.length ? ': ' + r.removedLabs.join(' ') : ''}; ` +
        `${r.removedOrphanNamespaces.length} orphan namespace(s); kept ${r.keptLabs.length} lab(s) with a live owner`,
    );
    return 0;
  }
  let s: LabState;
  if (names[0] !== undefined) s = findLab(names[0]);
  else {
    // no NAME: the only lab nobody owns (never a lab a live process is using)
    const free = readAllStates().filter((x) => !ownerAlive(x));
    if (free.length !== 1) {
      throw new UsageError(
        free.length === 0
          ? 'no detached lab is up'
          : `several labs are up; name one (${free.map((x) => x.prefix.replace(/-$/, '')).join(', ')})`,
      );
    }
    s = free[0]!;
  }
  const name = s.prefix.replace(/-$/, '');
  if (ownerAlive(s)) {
    process.stderr.write(`note: lab ${name} is owned by live process ${s.ownerPid}; removing it anyway\n`);
  }
  await downByState(s);
  print(json, { removedLabs: [name] }, `removed lab ${name}`);
  return 0;
}

const SELFTEST = {
  name: 'lab selftest',
  summary: 'Builds a lab with every site behaviour and measures each from inside (mapping, filtering, delay, loss).',
  options: {
    delay: value('MS', 'one-way delay per access link (default 20ms)', (s: string) => parseDuration(s)),
    loss: value('PCT', 'loss per access link and direction (default 10%)', (s: string) => parsePercent(s)),
    'no-install': NO_INSTALL,
    json: flag('one JSON object'),
  },
};

async function cmdSelftest(args: string[]): Promise<number> {
  const p = parseCommand(SELFTEST, args);
  if (p === null) return 0;
  const { delay: delayMs, loss: lossPct, json } = p.values;
  await ensurePrereqs(['lab'], { what: 'onionpunch lab selftest', install: !p.values['no-install'] });
  const r = await runSelftest({ delayMs, lossPct, log: (l) => process.stderr.write(l + '\n') });
  const text = Object.entries(r.behaviours)
    .map(([k, v]) => `${v.ok ? 'ok  ' : 'FAIL'} ${k}`)
    .concat(
      `lab up ${r.upMs} ms, down ${r.downMs} ms, total ${r.totalMs} ms: ` +
        `${r.ok ? 'all behaviours ok' : 'SOME BEHAVIOURS FAILED'}`,
    )
    .join('\n');
  print(json, r, text);
  return r.ok ? 0 : 1;
}

export async function main(args: string[]): Promise<number> {
  return dispatch(
    {
      name: 'lab',
      summary: 'The NAT lab (root): real nftables NATs in network namespaces (docs/LAB.md).',
      subs: {
        up: { summary: 'build a lab and leave it up', run: cmdUp },
        exec: { summary: 'run a command inside a lab node', run: cmdExec },
        status: { summary: 'list labs', run: cmdStatus },
        down: { summary: 'remove a lab (or every ownerless one)', run: cmdDown },
        selftest: { summary: 'build every behaviour and measure it', run: cmdSelftest },
        matrix: {
          summary: 'punch every NAT pair over a private Tor network',
          run: async (a) => (await import('./lab-matrix.js')).main(a),
        },
        stress: {
          summary: 'many concurrent punches from B sites to A, measured, optionally under faults',
          run: async (a) => (await import('./lab-stress.js')).main(a),
        },
      },
    },
    args,
  );
}
