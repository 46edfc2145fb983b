/**
 * The package as a user gets it: `npm pack` (which builds the TypeScript and, in prepack, the prebuilt N-API
 * binary), then the tarball installed into a fresh project twice — normally, and with `--ignore-scripts` as
 * where install scripts are disabled — and in each: a strict TypeScript consumer that imports only from
 * `onionpunch` type-checks (this repository's tsc), and an ESM consumer (consumer.mjs) punches on loopback
 * with the facade and the real engine. Installs are offline-friendly (`--prefer-offline`: from npm's cache).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
const skip = linuxX64 ? false : 'the package ships a linux-x64 prebuild only';

/**
 * npm's own variables from an enclosing `npm test` would leak into the nested npm runs: drop them. The prepack
 * build (prebuildify) gets node-gyp a private header directory; point it at this node's own headers when they
 * are installed beside it, so that packing needs no download.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const what = `${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status} ${r.signal ?? ''}`;
    throw new Error(`${what}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

const work = mkdtempSync(join(tmpdir(), 'onionpunch-pack-'));
let packed: PackResult;
let tarball: string;

let packMs = 0;
before(() => {
  if (skip) return;
  const t0 = performance.now();
  const r = run('npm', ['pack', '--json', '--pack-destination', work], repo, 240_000);
  // Lifecycle scripts print to stdout too; the JSON report is the last top-level array.
  const json = r.stdout.slice(r.stdout.lastIndexOf('\n[') + 1);
  packed = (JSON.parse(json) as PackResult[])[0]!;
  tarball = join(work, packed.filename);
  packMs = Math.round(performance.now() - t0);
});
after(() => rmSync(work, { recursive: true, force: true }));

test('the tarball ships the library, its types and the linux-x64 prebuild, not the dev tree', { skip }, (t) => {
  const paths = packed.files.map((f) => f.path);
  const sizes = `packed ${packed.size} B, unpacked ${packed.unpackedSize} B, ${packed.entryCount} files`;
  t.diagnostic(`npm pack ${packMs} ms: ${sizes}`);
  for (const p of [
    'package.json',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/wire/index.js',
    'dist/src/lab/index.js',
    'prebuilds/linux-x64/onionpunch.glibc.node',
    'binding.gyp',
    'bin/onionpunch.js',
  ]) {
    assert.ok(paths.includes(p), `ships ${p}`);
  }
  const cc = paths.some((p) => p.startsWith('native/') && p.endsWith('.cc'));
  assert.ok(cc, 'ships the C++ sources (the source build fallback)');
  const devTree = /^(dist\/test|dist\/bench|src|test|build|node_modules)\//;
  const stray = paths.filter((p) => devTree.test(p) || p.endsWith('.map'));
  assert.deepEqual(stray, [], 'no tests, TypeScript sources, local builds or source maps');
  assert.ok(packed.size < 2_000_000, `packed size ${packed.size} B stays small`);
  // prebuildify moves the addon it built into prebuilds/; prepare (after prepack) links it back: the dev tree keeps it.
  assert.ok(existsSync(join(repo, 'build', 'Release', 'onionpunch_native.node')), 'dev tree keeps build/Release');
});

const TS_CONSUMER = `import { Onionpunch, PunchSessionError, ApiError, encodeMessage, type OnionpunchOptions,
  type PunchedConnection, type EimVerdict, type Endpoint } from 'onionpunch';
import type { Socket } from 'node:net';

const opts: OnionpunchOptions = {
  overlay: { tor: { control: '127.0.0.1:9051', socks: '127.0.0.1:9050' } },
  network: 'main',
  natcheck: ['203.0.113.10:8333', { address: '198.51.100.7', port: 8333 }],
  limits: { sessionsPerSec: 2, maxConcurrentSessions: 8, perEndpoint: 1 },
};
export async function main(): Promise<void> {
  const op = await Onionpunch.open(opts);
  const v: EimVerdict = await op.nat();
  const mapping: 'eim' | 'edm' | 'unknown' = v.mapping;
  const l = await op.listen();
  l.on('connection', (s, info) => {
    const peer: Endpoint = info.remote;
    const sock: Socket = s;
    sock.end(() => console.log(peer.address, info.timeline.at('verified')));
  });
  l.on('failure', (err) => console.log(err.code, err.side));
  try {
    const c: PunchedConnection = await op.punch('x.onion:8333');
    const established: number | undefined = c.timeline.at('established');
    c.socket.write(encodeMessage('main', 'verack', {}));
    console.log(mapping, established);
  } catch (err) {
    if (err instanceof PunchSessionError) console.log(err.code, err.side, err.step);
    else if (err instanceof ApiError) console.log(err.code);
  }
  await op.close();
}
`;

function consumerProject(name: string, installArgs: string[]): string {
  const dir = join(work, name);
  run('mkdir', ['-p', dir], work);
  const manifest = { name: `consumer-${name}`, version: '0.0.0', private: true, type: 'module' };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
  const offline = ['--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock'];
  run('npm', ['install', tarball, ...offline, ...installArgs], dir);
  return dir;
}

function typeCheck(dir: string): void {
  // Only the package root: every building block the consumer uses is re-exported there (src/index.ts).
  const specs = [...TS_CONSUMER.matchAll(/from '([^']+)'/g)].map((m) => m[1]).filter((x) => !x!.startsWith('node:'));
  assert.deepEqual([...new Set(specs)], ['onionpunch'], 'the TS consumer imports only from the root');
  writeFileSync(join(dir, 'consumer.ts'), TS_CONSUMER);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(repo, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }),
  );
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  run(process.execPath, [tsc, '-p', dir], dir);
  // The check has teeth: the same setup refuses a name the package does not export, and a deep import.
  const bad = [
    "import { NoSuchExport } from 'onionpunch';",
    "import * as deep from 'onionpunch/dist/src/index.js';",
    'console.log(NoSuchExport, deep);',
  ];
  writeFileSync(join(dir, 'consumer.ts'), bad.join('\n') + '\n');
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /TS2305/, 'unknown export refused');
  assert.match(r.stdout, /TS2307/, 'deep import refused');
}

function punch(dir: string): Record<string, unknown> {
  copyFileSync(join(repo, 'test', 'package', 'consumer.mjs'), join(dir, 'consumer.mjs'));
  const opts = { cwd: dir, env: cleanEnv(), encoding: 'utf8' as const, timeout: 60_000 };
  const r = spawnSync(process.execPath, ['consumer.mjs'], opts);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  assert.equal(r.status, 0, `consumer.mjs exited ${r.status}: ${line}\n${r.stderr}`);
  return JSON.parse(line) as Record<string, unknown>;
}

for (const mode of ['normal', 'ignore-scripts'] as const) {
  test(`installed (${mode}): a strict TS consumer type-checks, an ESM consumer punches`, { skip }, (t) => {
    const ms = (t0: number): number => Math.round(performance.now() - t0);
    const t0 = performance.now();
    const dir = consumerProject(mode, mode === 'ignore-scripts' ? ['--ignore-scripts'] : []);
    const installMs = ms(t0);
    const pkg = join(dir, 'node_modules', 'onionpunch');
    // Either way the shipped prebuild is what loads: the install script finds it and builds nothing.
    assert.equal(existsSync(join(pkg, 'build')), false, 'no source build in the installed package');
    assert.deepEqual(readdirSync(join(pkg, 'prebuilds', 'linux-x64')), ['onionpunch.glibc.node']);
    const t1 = performance.now();
    typeCheck(dir);
    const tscMs = ms(t1);
    const out = punch(dir);
    t.diagnostic(`install ${installMs} ms, tsc ${tscMs} ms, punch ${String(out.punchMs)} ms`);
    t.diagnostic(`timeline ${(out.timeline as string[]).join(' ')}`);
    assert.equal(out.ok, true);
    assert.equal((out.nat as { mapping: string }).mapping, 'eim');
    assert.equal(out.received, 'hello over the punched socket');
    assert.equal(out.deepImport, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'deep imports are refused by the exports map');
  });
}
