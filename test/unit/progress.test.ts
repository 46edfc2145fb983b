/**
 * The progress module (src/lab/progress.ts): a bar redrawn in place on a terminal, plain lines without one.
 * The terminal is (a) a stream object whose isTTY is true (the formatter's contract) and (b) a real
 * pseudo-terminal from script(1), with a child process writing to its stderr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Progress,
  formatBar,
  formatDuration,
  formatStep,
  statusOnly,
  type ProgressStream,
} from '../../src/lab/progress.js';

const ESC = /\x1b|\r/;

function sink(isTTY: boolean, columns?: number): ProgressStream & { out: string } {
  const s = {
    isTTY,
    out: '',
    write(c: string) {
      s.out += c;
      return true;
    },
    ...(columns ? { columns } : {}),
  };
  return s;
}

function clock(): { now: () => number; t: number } {
  const c = { t: 0, now: () => c.t };
  return c;
}

test('formatting: bar, step line, duration, width cap', () => {
  assert.equal(formatDuration(42_400), '42s');
  assert.equal(formatDuration(65_000), '1m05s');
  const bar = formatBar({ label: 'lab matrix', done: 5, total: 20, elapsedMs: 10_000, note: 'eim×eim #5: ok' }, 100);
  assert.match(bar, /^lab matrix \[#+-+\] 5\/20 25% 10s eta 30s {2}eim×eim #5: ok$/);
  const hashes = /\[(#*)(-*)\]/.exec(bar)!;
  assert.equal(hashes[1]!.length / (hashes[1]!.length + hashes[2]!.length), 0.25, 'a quarter of the bar');
  assert.ok(formatBar({ label: 'x', done: 1, total: 2, elapsedMs: 0, note: 'n'.repeat(500) }, 60).length <= 59);
  assert.equal(formatBar({ label: 'bring-up', done: 2, elapsedMs: 3000 }), 'bring-up 2 done 3s');
  const step = formatStep({ label: 'lab matrix', done: 3, total: 35, elapsedMs: 0, note: 'a #3: ok' });
  assert.equal(step, 'lab matrix [3/35] a #3: ok');
});

test('not a terminal: one plain line per step and per log line, no escape codes, status silent', () => {
  const s = sink(false);
  const c = clock();
  const p = new Progress({ label: 'lab matrix', stream: s, now: c.now });
  p.setTotal(3);
  p.status('tor: first consensus');
  p.advance('a #1: ok 130.0 ms');
  p.log('a: 1/1, median 130 ms');
  p.advance('b #1: ok');
  p.advance();
  p.finish('3 pairs in 9 s');
  assert.equal(
    s.out,
    'lab matrix [1/3] a #1: ok 130.0 ms\na: 1/1, median 130 ms\nlab matrix [2/3] b #1: ok\n' +
      'lab matrix [3/3]\nlab matrix: 3 pairs in 9 s\n',
  );
  assert.ok(!ESC.test(s.out));
});

test('a terminal: the bar is redrawn in place, log lines go above it, the end leaves one line', () => {
  const s = sink(true, 120);
  const c = clock();
  const p = new Progress({ label: 'lab matrix', stream: s, now: c.now, minIntervalMs: 0 });
  p.setTotal(2);
  c.t = 1000;
  p.status('tor: keys made');
  p.advance('a #1: ok');
  p.log('a: done');
  c.t = 2000;
  p.advance('a #2: ok');
  p.finish('done');
  const frames = s.out.split('\r\x1b[2K').filter(Boolean);
  assert.equal(frames[0], formatBar({ label: 'lab matrix', done: 0, total: 2, elapsedMs: 0 }, 120));
  assert.match(frames[1]!, /0\/2 0% 1s {2}tor: keys made$/);
  assert.match(frames[2]!, /\] 1\/2 50% 1s eta 1s {2}a #1: ok$/);
  assert.equal(frames[3], 'a: done\n', 'a log line clears the bar and stays');
  assert.match(frames[4]!, /1\/2 50%.*a #1: ok$/, 'and the bar comes back under it');
  assert.match(frames[5]!, /2\/2 100% 2s {2}a #2: ok$/);
  assert.match(s.out, /2\/2 100% 2s {2}done\n$/, 'finish ends the bar with a newline');
  assert.equal(s.out.split('\n').length - 1, 2, 'only the log line and the end break lines');
});

test('throttled: a burst of steps redraws the bar once per interval, the last step and log lines always', () => {
  const s = sink(true, 100);
  const c = clock();
  const p = new Progress({ label: 'stress', stream: s, now: c.now, total: 1000 });
  for (let i = 1; i <= 1000; i++) {
    c.t = i; // 1000 sessions in one second
    p.advance(`#${i}`);
    if (i === 500) p.log('half way');
  }
  const frames = s.out.split('\r\x1b[2K').filter(Boolean);
  assert.ok(frames.length <= 14, `${frames.length} redraws for 1000 steps in 1 s at 100 ms`);
  assert.ok(frames.includes('half way\n'));
  assert.match(frames.at(-1)!, /1000\/1000 100%.*#1000$/);
  const plain = sink(false);
  const q = new Progress({ label: 'stress', stream: plain, now: c.now, total: 100, minIntervalMs: 1000 });
  for (let i = 1; i <= 100; i++) {
    c.t = 1000 + i * 25; // 2.5 s
    q.advance(`#${i}`);
  }
  const lines = ['stress [1/100] #1', 'stress [41/100] #41', 'stress [81/100] #81', 'stress [100/100] #100'];
  assert.deepEqual(plain.out.trim().split('\n'), lines, 'one line a second and the last');
});

test('statusOnly: a bring-up shown on another bar changes neither its count nor its total', () => {
  const s = sink(false);
  const p = new Progress({ label: 'm', stream: s, total: 10 });
  const sub = statusOnly(p);
  sub.setTotal(4);
  sub.advance('tor: keys made');
  sub.log('noise');
  p.advance('x');
  assert.equal(s.out, 'm [1/10] x\n');
});

const SCRIPT = '/usr/bin/script';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test(
  'on a real pseudo-terminal (script -qc) stderr gets the bar; redirected to a file it gets plain lines',
  {
    skip: existsSync(SCRIPT) ? false : 'script(1) from util-linux is not installed',
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'onionpunch-progress-'));
    try {
      const file = join(dir, 'job.mjs');
      writeFileSync(
        file,
        `import { Progress } from ${JSON.stringify(join(ROOT, 'src', 'lab', 'progress.js'))};
      const p = new Progress({ label: 'job', total: 2 });
      p.advance('one'); p.log('kept'); p.advance('two'); p.finish('end');\n`,
      );
      const cmd = `'${process.execPath}' '${file}'`;
      // script(1) runs the command on a new pseudo-terminal and copies what it prints (stderr included) to stdout.
      const tty = spawnSync(SCRIPT, ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(tty.status, 0, tty.stdout + tty.stderr);
      assert.match(tty.stdout, /\r\x1b\[2Kjob \[#+-*\] 1\/2 50%/);
      assert.match(tty.stdout, /\r\x1b\[2Kkept\r?\n/);
      const plain = spawnSync('sh', ['-c', `${cmd} 2>&1 | cat`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(plain.stdout, 'job [1/2] one\nkept\njob [2/2] two\njob: end\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
