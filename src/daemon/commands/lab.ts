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
 */
import { spawn } from 'node:child_process';
import { UsageError } from '../../errors.js';
import { ArgReader } from '../args.js';
import { Lab, downByState, listNamespaces, reapLabs, describePlan } from '../../lab/topology/lab.js';
import { LabError } from '../../lab/errors.js';
import { INBOUND_POLICIES, NAT_KINDS, type InboundPolicy, type LabSpec, type NatKind, type SiteSpec } from '../../lab/topology/spec.js';
import { ownerAlive, readAllStates, stateFile, type LabState } from '../../lab/topology/state.js';
import { runSelftest } from '../../lab/topology/selftest.js';

const HELP = `usage: onionpunch lab <up|exec|status|down|selftest|matrix> [options]
  lab up [--sites N] [--nat-<site> SPEC]... [--delay MS] [--jitter MS] [--loss PCT]
         [--public-hosts N] [--extra-public-hosts N] [--json]
      SPEC: comma list of eim|eim-shift|edm, drop|rst|icmp, cgnat, fw6 (e.g. --nat-b edm,rst)
  lab exec [--lab NAME] NODE -- CMD...   NODE: a, b, a-router, a-carrier, core1, core2, pub1, ...
  lab status [--json]
  lab down NAME | --all [--json]
  lab selftest [--delay MS] [--loss PCT] [--json]
  lab matrix [--runs N] [--delay MS] [--loss PCT] [--json]   punch every NAT pair over private Tor`;

/** "25ms", "25", "0.5s" -> milliseconds. */
export function parseMs(v: string, what: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s)?$/.exec(v.trim());
  if (!m) throw new UsageError(`${what}: expected a duration like 25ms or 0.5s, got '${v}'`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

/** "1%", "1", "0.5%" -> percent. */
export function parsePct(v: string, what: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)%?$/.exec(v.trim());
  if (!m || Number(m[1]) > 100) throw new UsageError(`${what}: expected a percentage like 1% , got '${v}'`);
  return Number(m[1]);
}

/** Applies a `--nat-X` SPEC ("edm,rst,cgnat") to a site. */
export function applySiteSpec(site: SiteSpec, spec: string): void {
  for (const tok of spec.split(',').map((t) => t.trim()).filter(Boolean)) {
    if ((NAT_KINDS as readonly string[]).includes(tok)) site.nat = tok as NatKind;
    else if ((INBOUND_POLICIES as readonly string[]).includes(tok)) site.inbound = tok as InboundPolicy;
    else if (tok === 'cgnat') site.cgnat = true;
    else if (tok === 'fw6') site.ipv6 = 'fw6';
    else throw new UsageError(`unknown site behaviour '${tok}' (want ${[...NAT_KINDS, ...INBOUND_POLICIES, 'cgnat', 'fw6'].join(', ')})`);
  }
}

/** Parses `lab up` options into a LabSpec (exported for unit tests). */
export function parseUpArgs(args: string[]): { spec: LabSpec; json: boolean } {
  let nSites = 2;
  const natArgs: Array<[string, string]> = [];
  const spec: LabSpec = { sites: [] };
  let json = false;
  const r = new ArgReader(args);
  for (let a = r.next(); a !== undefined; a = r.next()) {
    const val = (): string => r.value(a);
    if (a === '--json') json = true;
    else if (a === '--sites') nSites = r.number(a, 1, 26, true);
    else if (a === '--delay') spec.delayMs = parseMs(val(), a);
    else if (a === '--jitter') spec.jitterMs = parseMs(val(), a);
    else if (a === '--loss') spec.lossPct = parsePct(val(), a);
    else if (a === '--public-hosts') spec.publicHosts = r.number(a, 0, 40, true);
    else if (a === '--extra-public-hosts') spec.extraPublicHosts = r.number(a, 0, 40, true);
    else if (a.startsWith('--nat-')) natArgs.push([a.slice(6), val()]);
    else throw new UsageError(`lab up: unknown option '${a}'`);
  }
  for (let i = 0; i < nSites; i++) spec.sites.push({ name: String.fromCharCode(97 + i) });
  for (const [name, s] of natArgs) {
    const site = spec.sites.find((x) => x.name === name);
    if (!site) throw new UsageError(`--nat-${name}: no site '${name}' (sites are a..${String.fromCharCode(96 + nSites)})`);
    applySiteSpec(site, s);
  }
  return { spec, json };
}

function print(json: boolean, obj: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(obj, null, 2) + '\n' : text + '\n');
}

function planText(d: ReturnType<typeof describePlan>): string {
  const lines = [`lab ${d.name} (namespace prefix ${d.prefix}, state ${d.stateFile})`];
  for (const c of d.cores) lines.push(`  ${c.key.padEnd(10)} ${c.ip} ${c.ip6}`);
  for (const s of Object.values(d.sites)) {
    const cond = [s.delayMs ? `delay ${s.delayMs}ms` : '', s.jitterMs ? `jitter ${s.jitterMs}ms` : '', s.lossPct ? `loss ${s.lossPct}%` : '']
      .filter(Boolean)
      .join(' ');
    lines.push(`  site ${s.name}: nat ${s.nat}, inbound ${s.inbound}${s.cgnat ? ', cgnat' : ''}${s.ipv6 ? ', fw6' : ''}${cond ? ', ' + cond : ''} (core${s.core})`);
    lines.push(`    ${s.router.key.padEnd(12)} wan ${s.router.wanIp}${s.router.wanIp6 ? ' ' + s.router.wanIp6 : ''}, lan ${s.router.lanIp}`);
    if (s.carrier) lines.push(`    ${s.carrier.key.padEnd(12)} wan ${s.carrier.wanIp}, lan ${s.carrier.lanIp}`);
    for (const h of s.hosts) lines.push(`    ${h.key.padEnd(12)} ${h.ip}${h.ip6 ? ' ' + h.ip6 : ''} (public ${s.publicIp})`);
  }
  for (const p of d.publicHosts) lines.push(`  ${p.key.padEnd(10)} ${p.ip} ${p.ip6}${p.extra ? ' (extra)' : ''} (core${p.core})`);
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
  throw new UsageError(states.length === 0 ? 'no lab is up' : `several labs are up; pick one with --lab NAME (${states.map((s) => s.prefix.replace(/-$/, '')).join(', ')})`);
}

async function cmdUp(args: string[]): Promise<number> {
  const { spec, json } = parseUpArgs(args);
  const lab = await Lab.up(spec, { detached: true });
  const d = lab.describe();
  print(json, { ...d, upMs: Math.round(lab.upMs) }, `${planText(d)}\nup in ${lab.upMs.toFixed(0)} ms; remove with: onionpunch lab down ${d.name}`);
  return 0;
}

async function cmdExec(args: string[]): Promise<number> {
  let labName: string | undefined;
  const sep = args.indexOf('--');
  const head = sep >= 0 ? args.slice(0, sep) : args.slice(0, 1);
  const cmd = sep >= 0 ? args.slice(sep + 1) : args.slice(1);
  const rest: string[] = [];
  for (let i = 0; i < head.length; i++) {
    if (head[i] === '--lab') labName = head[++i];
    else rest.push(head[i]!);
  }
  if (rest.length !== 1 || cmd.length === 0) throw new UsageError('lab exec [--lab NAME] NODE -- CMD...');
  const s = findLab(labName);
  const node = rest[0]!;
  const ns = s.namespaces.includes(node) ? node : s.prefix + node;
  if (!s.namespaces.includes(ns)) {
    throw new LabError('LAB_UNKNOWN_NODE', `no node '${node}' in lab ${s.prefix.replace(/-$/, '')} (have: ${s.namespaces.map((n) => n.slice(s.prefix.length)).join(', ')})`);
  }
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'inherit' });
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function cmdStatus(args: string[]): Promise<number> {
  const json = args.includes('--json');
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
    sites: s.plan.sites.map((x) => ({ name: x.name, nat: x.nat, inbound: x.inbound, cgnat: x.cgnat, ipv6: x.ipv6, publicIp: x.publicIp })),
  }));
  const text =
    labs.length === 0
      ? 'no labs'
      : labs
          .map(
            (l) =>
              `${l.name}: ${l.namespacesPresent}/${l.namespaces} namespaces, owner ${l.detached ? 'detached' : `${l.ownerPid} (${l.ownerAlive ? 'alive' : 'dead'})`}, sites ${l.sites.map((x) => `${x.name}=${x.nat}/${x.inbound}${x.cgnat ? '+cgnat' : ''}${x.ipv6 ? '+fw6' : ''}`).join(' ')}`,
          )
          .join('\n');
  print(json, { labs }, text);
  return 0;
}

async function cmdDown(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const names = args.filter((a) => !a.startsWith('--'));
  for (const a of args) if (a.startsWith('--') && a !== '--json' && a !== '--all') throw new UsageError(`lab down: unknown option '${a}'`);
  if (args.includes('--all')) {
    if (names.length > 0) throw new UsageError('lab down: give NAME or --all, not both');
    const r = await reapLabs();
    print(json, r, `removed ${r.removedLabs.length} lab(s)${r.removedLabs.length ? ': ' + r.removedLabs.join(' ') : ''}; ${r.removedOrphanNamespaces.length} orphan namespace(s); kept ${r.keptLabs.length} lab(s) with a live owner`);
    return 0;
  }
  if (names.length > 1) throw new UsageError('lab down [NAME] | --all');
  let s: LabState;
  if (names[0] !== undefined) s = findLab(names[0]);
  else {
    // no NAME: the only lab nobody owns (never a lab a live process is using)
    const free = readAllStates().filter((x) => !ownerAlive(x));
    if (free.length !== 1) {
      throw new UsageError(free.length === 0 ? 'no detached lab is up' : `several labs are up; name one (${free.map((x) => x.prefix.replace(/-$/, '')).join(', ')})`);
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

async function cmdSelftest(args: string[]): Promise<number> {
  let json = false;
  let delayMs: number | undefined;
  let lossPct: number | undefined;
  const argv = new ArgReader(args);
  for (let a = argv.next(); a !== undefined; a = argv.next()) {
    if (a === '--json') json = true;
    else if (a === '--delay') delayMs = parseMs(argv.value(a), a);
    else if (a === '--loss') lossPct = parsePct(argv.value(a), a);
    else throw new UsageError(`lab selftest: unknown option '${a}'`);
  }
  const r = await runSelftest({ delayMs, lossPct, log: (l) => process.stderr.write(l + '\n') });
  const text = Object.entries(r.behaviours)
    .map(([k, v]) => `${v.ok ? 'ok  ' : 'FAIL'} ${k}`)
    .concat(`lab up ${r.upMs} ms, down ${r.downMs} ms, total ${r.totalMs} ms: ${r.ok ? 'all behaviours ok' : 'SOME BEHAVIOURS FAILED'}`)
    .join('\n');
  print(json, r, text);
  return r.ok ? 0 : 1;
}

export async function main(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'up':
      return cmdUp(rest);
    case 'exec':
      return cmdExec(rest);
    case 'status':
      return cmdStatus(rest);
    case 'down':
      return cmdDown(rest);
    case 'selftest':
      return cmdSelftest(rest);
    case 'matrix':
      return (await import('./lab-matrix.js')).main(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP + '\n');
      return sub === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown lab command '${sub}'\n${HELP}`);
  }
}
