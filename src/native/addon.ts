/**
 * Loads the compiled addon (build/Release/onionpunch_native.node). The path is found from this file's
 * location so that it works from the repository, from dist/ and from an installed package alike.
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

/** The addon, loaded once. Throws NATIVE_NOT_BUILT with the fix when the build is missing. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  const root = packageRoot();
  const file = join(root, 'build', 'Release', 'onionpunch_native.node');
  if (!existsSync(file)) {
    throw new OnionpunchError('NATIVE_NOT_BUILT', `native addon missing at ${file}: run \`npm run build:native\``);
  }
  const require = createRequire(import.meta.url);
  cached = require(file) as NativeBinding;
  return cached;
}
