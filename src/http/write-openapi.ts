/**
 * `npm run openapi`: write the OpenAPI document to the path given (docs/openapi.json).
 * The version is the package's, so the file only changes when the API or the version does.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { openApiText } from './openapi.js';

const target = process.argv[2];
if (target === undefined) {
  process.stderr.write('usage: node build/src/http/write-openapi.js <path>\n');
  process.exit(2);
}
const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
writeFileSync(target, openApiText(pkg.version));
process.stdout.write(`wrote ${target}\n`);
