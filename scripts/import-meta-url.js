// Injected by scripts/bundle.mjs into the CommonJS bundle: `import.meta.url` of every bundled
// module becomes the bundle's own URL (dist/src/cli/main.cjs). Modules that find files from it
// (version.ts, keychain.ts, the settings cache key) look beside or above the bundle.
// It runs inside a CommonJS bundle, where require and __filename exist.
/* eslint-disable no-undef, @typescript-eslint/no-require-imports */
export const import_meta_url = require('node:url').pathToFileURL(__filename).href;
