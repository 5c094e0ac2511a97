// The official TypeScript SDK's output-schema validation, timed per tool
// (bench/peers.rs runs it): the SDK compiles a tool's validator once, when it
// lists tools, and runs it on every result.
//
//   node peers-ts.mjs NPM_PREFIX SPEC.json
//
// SPEC is [{"tool", "schema", "instance"}, ...]; prints
// [{"tool", "compile_ms", "validate_us"}, ...].
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [prefix, specPath] = process.argv.slice(2);
const require = createRequire(prefix.replace(/\/?$/, '/'));
const { AjvJsonSchemaValidator } = require('@modelcontextprotocol/sdk/validation/ajv');

const out = [];
for (const { tool, schema, instance } of JSON.parse(readFileSync(specPath, 'utf8'))) {
  const compiles = 20;
  let started = performance.now();
  let validator;
  for (let i = 0; i < compiles; i++) {
    validator = new AjvJsonSchemaValidator().getValidator(schema);
  }
  const compileMs = (performance.now() - started) / compiles;
  const first = validator(instance);
  if (!first.valid) {
    console.error(`${tool}: the result does not validate: ${first.errorMessage}`);
    process.exit(1);
  }
  const runs = 2000;
  started = performance.now();
  for (let i = 0; i < runs; i++) {
    validator(instance);
  }
  out.push({ tool, compile_ms: compileMs, validate_us: ((performance.now() - started) / runs) * 1000 });
}
process.stdout.write(JSON.stringify(out));
