/**
 * Loads the compiled addon with node-gyp-build, from the package root found from this file's location (so it
 * works from the repository, from dist/ and from an installed package alike). node-gyp-build takes a local
 * build first (build/Release/*.node: the dev tree, or an install that built from source) and otherwise the
 * prebuilt N-API binary the package ships (prebuilds/<platform>-<arch>/onionpunch.<libc>.node, made by
 * `npm pack`'s prepack step), which is what lets `npm install --ignore-scripts onionpunch` work.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnionpunchError } from '../errors.js';

/** Raw binding surface; the typed facades in src/native/ wrap it. */
export interface NativeBinding {
  monotonicNs(): bigint;
  [name: string]: unknown;
}

let cached: NativeBinding | undefined;

/** Directory that holds package.json, found by walking up from this module. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new OnionpunchError('NATIVE_NOT_FOUND', 'cannot find the onionpunch package root');
    dir = up;
  }
}

/** node-gyp-build's resolver (a CommonJS module without type declarations). */
interface NodeGypBuild {
  (dir: string): unknown;
  /** The path of the binary `load(dir)` would load; throws when none matches this platform. */
  resolve(dir: string): string;
}

/** Path of the binary that {@link loadNative} loads; throws NATIVE_NOT_BUILT with the fix when there is none. */
export function nativePath(): string {
  const root = packageRoot();
  const require = createRequire(import.meta.url);
  const gypBuild = require('node-gyp-build') as NodeGypBuild;
  try {
    return gypBuild.resolve(root);
  } catch (err) {
    throw new OnionpunchError(
      'NATIVE_NOT_BUILT',
      `no native addon for ${process.platform}-${process.arch} under ${root} (neither build/Release nor prebuilds/): ` +
        'build it from source with `npm rebuild onionpunch` (in a checkout: `npm run build:native`; needs python3, ' +
        'make, g++)',
      { cause: err },
    );
  }
}

/** The addon, loaded once. Throws NATIVE_NOT_BUILT with the fix when no build matches. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  const file = nativePath();
  const require = createRequire(import.meta.url);
  cached = require(file) as NativeBinding;
  return cached;
}
