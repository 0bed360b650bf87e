import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJpeg, encodePng, pngChunk, rgbToYccPlanes, testPattern } from './image-writers.js';

/**
 * Acceptance tests of the command line: every case runs `src/cli/main.ts` in a child process
 * and checks what a user sees: the exit code, stdout, and for bad input
 * exactly one line `error: ...` on stderr naming the culprit (and a stack trace with --verbose).
 * The bad inputs are made in a temp folder from a copy of fixtures/tiny-timm. Nothing here
 * touches the network: HF_ENDPOINT is a closed port on 127.0.0.1 or a fake hub in this process,
 * and every run gets its own HF_HOME.
 *
 * Speed: under tsx every child spends ~0.7 s of CPU pushing every module it loads (vega and its
 * dependencies included) through the loader hooks; so by default src/ is transpiled once (typescript's transpileModule, no type check,
 * module structure and import.meta.url kept) into a temp mirror with `build` and `node_modules`
 * symlinked beside it, and the children run plain node on that (~0.25 s each).
 * VITPRUNE_CLI_TEST_TSX=1 runs `node --import tsx src/cli/main.ts` instead.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const TINY = path.join(ROOT, 'fixtures/tiny-timm');

const USE_TSX = process.env.VITPRUNE_CLI_TEST_TSX === '1';

let tmp: string;
let closedEndpoint: string; // http://127.0.0.1:<a port nothing listens on>
let command: string[]; // node arguments before the CLI's own

/** Every src/ .ts file → the same path under `${dir}/src` as .js; build/, node_modules and an ESM package.json beside. */
function transpileMirror(dir: string): string {
  const src = path.join(ROOT, 'src');
  for (const rel of readdirSync(src, { recursive: true }) as string[]) {
    if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
    const from = path.join(src, rel);
    const { outputText } = ts.transpileModule(readFileSync(from, 'utf8'), {
      fileName: from,
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        inlineSourceMap: true,
        sourceRoot: path.dirname(from), // stack traces name the real sources
      },
    });
    const to = path.join(dir, 'src', rel.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(to), { recursive: true });
    writeFileSync(to, outputText);
  }
  symlinkSync(path.join(ROOT, 'build'), path.join(dir, 'build'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', version }));
  return path.join(dir, 'src/cli/main.js');
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI; `env` entries are added to a scrubbed environment (no HF_* from the outside). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('HF_') && k !== 'NODE_OPTIONS' && k !== 'VITEST' && !k.startsWith('VITEST_')) base[k] = v;
  }
  const childEnv = {
    ...base,
    HF_HOME: mkdtempSync(path.join(tmp, 'hf-home-')),
    HF_ENDPOINT: closedEndpoint,
    NO_COLOR: '1',
    ...env,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...command, ...args], {
      cwd: ROOT,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const show = (r: Run) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

interface ErrorOptions {
  env?: Record<string, string>;
  /** Progress lines (by design on stderr) that may precede the error line, e.g. /^eval \[/. */
  progress?: RegExp;
}

/**
 * The error contract: exit code 1, nothing on stdout, stderr exactly one line `error: ...`
 * (after progress lines matching `progress`, if given) containing every `expected` fragment,
 * no stack trace; with --verbose, the same line followed by a stack trace. Both runs go
 * concurrently. Returns the error line.
 */
async function expectCliError(args: string[], expected: (string | RegExp)[], opts: ErrorOptions = {}): Promise<string> {
  const verboseArgs = [args[0]!, '--verbose', ...args.slice(1)]; // not last: `--model` may be, missing its value
  const [plain, verbose] = await Promise.all([cli(args, opts.env), cli(verboseArgs, opts.env)]);
  const errorPart = (r: Run): string => {
    if (!opts.progress) return r.stderr;
    const lines = r.stderr.split('\n');
    let i = 0;
    while (i < lines.length && opts.progress.test(lines[i]!)) i++;
    return lines.slice(i).join('\n');
  };
  expect(plain.code, show(plain)).toBe(1);
  expect(plain.stdout, show(plain)).toBe('');
  const stderr = errorPart(plain);
  expect(stderr, show(plain)).toMatch(/^error: [^\n]+\n$/);
  const line = stderr.slice(0, -1);
  expect(line).not.toMatch(/\bat .+:\d+:\d+/); // no stack frame
  const expectFragments = (text: string, r: Run) => {
    for (const fragment of expected) {
      if (typeof fragment === 'string') expect(text, show(r)).toContain(fragment);
      else expect(text, show(r)).toMatch(fragment);
    }
  };
  expectFragments(line, plain);

  expect(verbose.code, show(verbose)).toBe(1);
  expect(verbose.stdout, show(verbose)).toBe('');
  const verboseLine = errorPart(verbose).split('\n')[0]!;
  expect(verboseLine, show(verbose)).toMatch(/^error: /);
  expectFragments(verboseLine, verbose); // the same error (byte counts of a download may differ)
  expect(verbose.stderr, show(verbose)).toMatch(/\n\s+at .+:\d+:\d+\)?\n/); // a stack frame
  return line;
}

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------------------------
// Bad model folders, made from a copy of fixtures/tiny-timm

const fixtureBytes = () => readFileSync(path.join(TINY, 'model.safetensors'));

function fixtureHeader(): { header: Record<string, any>; data: Buffer } {
  const bytes = fixtureBytes();
  const length = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')), data: bytes.subarray(8 + length) };
}

function safetensorsWith(header: Record<string, unknown>, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

/** A copy of fixtures/tiny-timm named `name`, with model.safetensors and/or config.json replaced. */
function modelCopy(name: string, replace: { safetensors?: Uint8Array; config?: unknown } = {}): string {
  const dir = path.join(tmp, 'models', name);
  cpSync(TINY, dir, { recursive: true });
  if (replace.safetensors) writeFileSync(path.join(dir, 'model.safetensors'), replace.safetensors);
  if (replace.config !== undefined) writeFileSync(path.join(dir, 'config.json'), JSON.stringify(replace.config));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// A fake hub: `${endpoint}/{owner}/{name}/resolve/{revision}/{file}`, behaviour chosen by owner.
//   good/…   serves fixtures/tiny-timm (preprocessor_config.json: 404 EntryNotFound)
//   fail/…   HTTP 500 for everything
//   cut/…    config.json fine; model.safetensors announces its full Content-Length, sends half
//            and kills the socket
//   anything else: 404 RepoNotFound

interface FakeHub {
  endpoint: string;
  requests: string[];
  close(): Promise<void>;
}

async function startFakeHub(): Promise<FakeHub> {
  const files = new Map([
    ['config.json', readFileSync(path.join(TINY, 'config.json'))],
    ['model.safetensors', fixtureBytes()],
  ]);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url!);
    const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url!);
    const owner = m?.[1];
    if (owner === 'fail') return void res.writeHead(500).end('internal error');
    if (!m || (owner !== 'good' && owner !== 'cut')) return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end();
    const body = files.get(m[4]!);
    if (!body) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end();
    if (owner === 'cut' && m[4] === 'model.safetensors') {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length), 'x-repo-commit': 'c'.repeat(40) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------

let hub: FakeHub;
let png: string; // a valid 16×12 PNG
const file = (name: string) => path.join(tmp, name);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-cli-'));
  command = USE_TSX ? ['--import', 'tsx', MAIN] : ['--enable-source-maps', transpileMirror(path.join(tmp, 'mirror'))];
  closedEndpoint = `http://127.0.0.1:${await closedPort()}`;
  hub = await startFakeHub();

  const rgb = testPattern(16, 12);
  png = file('pattern.png');
  writeFileSync(png, encodePng({ width: 16, height: 12, colorType: 2, bitDepth: 8, samples: rgb }));
  const jpeg = encodeJpeg({ width: 16, height: 12, planes: rgbToYccPlanes(rgb, 16 * 12) });
  writeFileSync(file('pattern.jpg'), jpeg);
  writeFileSync(file('truncated.jpg'), jpeg.subarray(0, jpeg.length - 40)); // ends inside the scan data
  const garbage = Buffer.from(jpeg);
  for (let i = 200; i < garbage.length; i++) garbage[i] = (i * 37) & 0xff; // the first 200 bytes kept, the rest noise
  writeFileSync(file('garbage.jpg'), garbage);
  writeFileSync(file('notes.png'), 'these are notes, not an image\n');

  // Oversized: headers declaring 100000×100000 (PNG) and 60000×60000 (JPEG), no pixel data worth the name.
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 100_000);
  new DataView(ihdr.buffer).setUint32(4, 100_000);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const signature = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  writeFileSync(file('huge.png'), Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IEND', new Uint8Array(0))]));
  const hugeJpeg = Buffer.from(jpeg);
  for (let p = 2; p + 4 <= hugeJpeg.length; p += 2 + hugeJpeg.readUInt16BE(p + 2)) {
    if (hugeJpeg[p + 1] === 0xc0) {
      hugeJpeg.writeUInt16BE(60_000, p + 5); // height
      hugeJpeg.writeUInt16BE(60_000, p + 7); // width
      break;
    }
  }
  writeFileSync(file('huge.jpg'), hugeJpeg);
});

afterAll(async () => {
  await hub?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.concurrent('bad model folders', () => {
  it('truncated safetensors', async () => {
    const bytes = fixtureBytes();
    const dir = modelCopy('truncated', { safetensors: bytes.subarray(0, bytes.length - 100) });
    await expectCliError(['classify', '--model', dir, png], [path.join(dir, 'model.safetensors'), 'head.weight', /past the end|truncated/]);
  });

  it('empty safetensors', async () => {
    const dir = modelCopy('empty', { safetensors: new Uint8Array(0) });
    await expectCliError(['classify', '--model', dir, png], [path.join(dir, 'model.safetensors'), 'expected at least 8 bytes', 'found 0 bytes']);
  });

  it('header length longer than the file', async () => {
    const bytes = Buffer.from(fixtureBytes());
    bytes.writeBigUInt64LE(BigInt(bytes.length * 2), 0);
    const dir = modelCopy('header-too-long', { safetensors: bytes });
    await expectCliError(
      ['classify', '--model', dir, png],
      [path.join(dir, 'model.safetensors'), `header length is ${bytes.length * 2} bytes`, `only ${bytes.length - 8} bytes follow`],
    );
  });

  it('invalid JSON header', async () => {
    const bytes = Buffer.from(fixtureBytes());
    bytes.write('{{{{', 8);
    const dir = modelCopy('bad-json', { safetensors: bytes });
    await expectCliError(['classify', '--model', dir, png], [path.join(dir, 'model.safetensors'), 'header is not valid UTF-8 JSON']);
  });

  it('a tensor missing', async () => {
    const { header, data } = fixtureHeader();
    header['blocks.1.mlp.fc2.renamed'] = header['blocks.1.mlp.fc2.weight'];
    delete header['blocks.1.mlp.fc2.weight'];
    const dir = modelCopy('missing-tensor', { safetensors: safetensorsWith(header, data) });
    await expectCliError(
      ['classify', '--model', dir, png],
      [path.join(dir, 'model.safetensors'), 'missing tensor "blocks.1.mlp.fc2.weight"', 'expected shape [8, 16]'],
    );
  });

  it('a shape mismatch', async () => {
    const { header, data } = fixtureHeader();
    header['norm.weight'].shape = [2, 4];
    const dir = modelCopy('shape-mismatch', { safetensors: safetensorsWith(header, data) });
    await expectCliError(['classify', '--model', dir, png], [path.join(dir, 'model.safetensors'), '"norm.weight" has shape [2, 4], expected [8]']);
  });

  it('an unknown dtype', async () => {
    const { header, data } = fixtureHeader();
    header['norm.weight'].dtype = 'F8_E4M3';
    const dir = modelCopy('unknown-dtype', { safetensors: safetensorsWith(header, data) });
    await expectCliError(
      ['classify', '--model', dir, png],
      [path.join(dir, 'model.safetensors'), '"norm.weight"', 'unsupported dtype "F8_E4M3"', 'F32, F16, BF16'],
    );
  });

  it('an unknown architecture in config.json', async () => {
    const config = JSON.parse(readFileSync(path.join(TINY, 'config.json'), 'utf8'));
    config.architecture = 'swin_tiny_patch4_window7_224';
    delete config.model_args;
    const dir = modelCopy('unknown-arch', { config });
    await expectCliError(
      ['classify', '--model', dir, png],
      [path.join(dir, 'config.json'), 'unknown architecture "swin_tiny_patch4_window7_224"', 'supported: '],
    );
  });

  it('missing config.json', async () => {
    const dir = modelCopy('no-config');
    rmSync(path.join(dir, 'config.json'));
    await expectCliError(['classify', '--model', dir, png], [dir, 'expected config.json', 'not found']);
  });

  it('a folder that does not exist', async () => {
    const dir = path.join(tmp, 'no', 'such', 'model');
    await expectCliError(['classify', '--model', dir, png], [`'${dir}'`, 'expected a model folder']);
  });

  it('an unknown random: architecture', async () => {
    await expectCliError(['bench', '--model', 'random:vit_huge_patch99_1', '--runs', '1'], ['"vit_huge_patch99_1"', 'unknown architecture']);
  });
});

describe.concurrent('bad images', () => {
  it('a file that is not an image', async () => {
    await expectCliError(['classify', '--model', TINY, file('notes.png')], [file('notes.png'), 'not a JPEG or PNG image', 'found first bytes 74 68 65']);
  });

  it('a truncated JPEG', async () => {
    await expectCliError(['classify', '--model', TINY, file('truncated.jpg')], [file('truncated.jpg'), 'corrupt JPEG', 'truncated']);
  });

  it('a JPEG with garbage after its headers', async () => {
    await expectCliError(['classify', '--model', TINY, file('garbage.jpg')], [file('garbage.jpg'), 'corrupt JPEG']);
  });

  it('an image that does not exist', async () => {
    await expectCliError(['classify', '--model', TINY, file('nowhere.png')], [file('nowhere.png'), 'cannot read image file', 'ENOENT']);
  });

  it('an oversized PNG is refused from its header', async () => {
    await expectCliError(['classify', '--model', TINY, file('huge.png')], [file('huge.png'), '100000×100000', 'more than the limit']);
  });

  it('an oversized JPEG is refused from its header', async () => {
    await expectCliError(['classify', '--model', TINY, file('huge.jpg')], [file('huge.jpg'), '60000×60000', 'more than the limit']);
  });
});

describe.concurrent('hub errors', () => {
  it('unreachable endpoint', async () => {
    await expectCliError(
      ['classify', '--model', 'owner/tiny', png],
      [
        `cannot reach the model hub at ${closedEndpoint} (ECONNREFUSED) while fetching ${closedEndpoint}/owner/tiny/resolve/main/config.json`,
        /owner\/tiny is not in the hub cache at \S+models--owner--tiny; without network, pass a model folder \(config.json \+ model.safetensors\) instead: --model DIR/,
      ],
    );
  });

  it('failing endpoint (HTTP 500)', async () => {
    await expectCliError(['classify', '--model', 'fail/tiny', png], ['HTTP 500', `${hub.endpoint}/fail/tiny/resolve/main/config.json`], {
      env: { HF_ENDPOINT: hub.endpoint },
    });
  });

  it('repository not found (HTTP 404)', async () => {
    await expectCliError(
      ['classify', '--model', 'nobody/tiny', png],
      ['HTTP 404', `${hub.endpoint}/nobody/tiny/resolve/main/config.json`, 'nobody/tiny not found'],
      {
        env: { HF_ENDPOINT: hub.endpoint },
      },
    );
  });

  it('interrupted download (Content-Length announced, socket killed halfway)', async () => {
    const size = fixtureBytes().length;
    const expected = [`${hub.endpoint}/cut/tiny/resolve/`, 'model.safetensors', 'interrupted', `of ${size} bytes`];
    const env = { HF_ENDPOINT: hub.endpoint };
    // The download progress lines come first (stderr is not a TTY: one per 10 %, and the last).
    await Promise.all([
      expectCliError(['classify', '--model', 'cut/tiny', png], expected, { env, progress: /^model\.safetensors \[/ }),
      expectCliError(['classify', '--quiet', '--model', 'cut/tiny', png], expected, { env }),
    ]);
  });

  it('a hub cache that cannot be created', async () => {
    const notADir = file('hf-home-is-a-file');
    writeFileSync(notADir, '');
    await expectCliError(['classify', '--model', 'good/tiny', png], [path.join(notADir, 'hub'), 'ENOTDIR', 'HF_HOME'], {
      env: { HF_ENDPOINT: hub.endpoint, HF_HOME: notADir },
    });
  });
});

describe.concurrent('usage errors', () => {
  it('unknown command', async () => {
    await expectCliError(['frobnicate'], ["unknown command 'frobnicate'", 'classify, eval, bench']);
  });

  it('unknown option', async () => {
    const line = await expectCliError(['classify', '--model', TINY, '--bogus', png], ["unknown option '--bogus'", "'vitprune classify --help'"]);
    expect(line).not.toContain('"--bogus"'); // not node's half-quoted hint
  });

  it('an option without its value', async () => {
    await expectCliError(['classify', png, '--model'], ["'--model <value>' argument missing"]);
  });

  it('--top -1 (a value that looks like an option)', async () => {
    await expectCliError(['classify', '--model', TINY, '--top', '-1', png], ["'--top' argument is ambiguous", "'--top=-XYZ'"]);
  });

  it('eval without --images', async () => {
    await expectCliError(['eval', '--model', TINY], ['--images']);
  });

  it('--top abc', async () => {
    await expectCliError(['classify', '--model', TINY, '--top', 'abc', png], ['--top', 'positive integer', "'abc'"]);
  });

  it('classify without images', async () => {
    await expectCliError(['classify', '--model', TINY], ['IMAGE', 'got 0']);
  });

  it('eval on an empty folder', async () => {
    const dir = file('empty-images');
    mkdirSync(dir, { recursive: true });
    await expectCliError(['eval', '--model', TINY, '--images', dir], [`'${dir}'`, 'no .jpg/.jpeg/.png images']);
  });

  it('labels CSV without the columns', async () => {
    const dir = file('images-bad-csv');
    mkdirSync(dir, { recursive: true });
    cpSync(png, path.join(dir, 'n00000001_tench.png'));
    const csv = file('bad-labels.csv');
    writeFileSync(csv, 'name,label\nn00000001_tench.png,0\n');
    await expectCliError(['eval', '--model', TINY, '--images', dir, '--labels', csv], [`'${csv}'`, "'file' and 'class_index'", 'found: name, label']);
  });

  it('labels CSV with a class index the model does not have', async () => {
    const dir = file('images-bad-index');
    mkdirSync(dir, { recursive: true });
    cpSync(png, path.join(dir, 'n00000001_tench.png'));
    const csv = file('out-of-range.csv');
    writeFileSync(csv, 'file,class_index\nn00000001_tench.png,7\n');
    await expectCliError(['eval', '--model', TINY, '--images', dir, '--labels', csv], [`'${csv}'`, 'class_index 7', 'out of range', '3 classes']);
  });

  it('eval --predictions into a folder that does not exist', async () => {
    const dir = file('images-predictions');
    mkdirSync(dir, { recursive: true });
    cpSync(png, path.join(dir, 'a.png'));
    const csv = file('predictions.csv');
    writeFileSync(csv, 'file,class_index\na.png,0\n');
    const out = file('no-such-folder/predictions.json');
    await expectCliError(['eval', '--model', TINY, '--images', dir, '--labels', csv, '--predictions', out], [`'${out}'`, 'ENOENT'], {
      progress: /^eval \[/,
    });
  });
});

describe.concurrent('working commands', () => {
  it('--version prints the version of package.json', async () => {
    const r = await cli(['--version']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe(`vitprune ${JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}\n`);
  });

  it('classify --json prints one JSON document of the documented shape', async () => {
    const r = await cli(['classify', '--model', TINY, '--json', '--top', '2', png]);
    expect(r.code, show(r)).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toEqual([
      {
        file: png,
        predictions: [0, 1].map(() => ({
          index: expect.any(Number),
          label: expect.stringMatching(/^n000[123]$/),
          description: expect.stringMatching(/^(tench|goldfish|shark)$/),
          score: expect.any(Number),
        })),
      },
    ]);
    const [a, b] = doc[0].predictions;
    expect(a.score).toBeGreaterThanOrEqual(b.score);
    expect(a.score + b.score).toBeLessThanOrEqual(1 + 1e-6);
  });

  it('eval --json on 3 images with a labels CSV', async () => {
    const dir = file('images-ok');
    mkdirSync(dir, { recursive: true });
    const names = ['n00000001_tench.png', 'n00000002_goldfish.jpg', 'n00000003_shark.png'];
    cpSync(png, path.join(dir, names[0]));
    cpSync(file('pattern.jpg'), path.join(dir, names[1]));
    writeFileSync(
      path.join(dir, names[2]),
      encodePng({ width: 9, height: 14, colorType: 0, bitDepth: 8, samples: testPattern(9, 14).filter((_, i) => i % 3 === 0) }),
    );
    const csv = file('labels.csv');
    writeFileSync(csv, `file,class_index\n${names.map((n, i) => `${n},${i}`).join('\n')}\n`);
    const r = await cli(['eval', '--model', TINY, '--images', dir, '--labels', csv, '--json']);
    expect(r.code, show(r)).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(['gmacs', 'images', 'imagesPerSecond', 'model', 'msPerImage', 'skipped', 'top1', 'top5']);
    expect(doc.skipped).toEqual([]);
    expect(doc).toMatchObject({ model: TINY, images: 3 });
    expect([0, 1 / 3, 2 / 3, 1].some((x) => Math.abs(doc.top1 - x) < 1e-9)).toBe(true);
    expect(doc.top5).toBe(1); // 3 classes: the top 5 always holds the label
    expect(doc.gmacs).toBeGreaterThan(0);
    expect(doc.msPerImage).toBeGreaterThan(0);
  });

  it('bench --json prints the documented shape', async () => {
    const r = await cli(['bench', '--model', 'random:vit_tiny_patch16_224', '--runs', '2', '--json']);
    expect(r.code, show(r)).toBe(0);
    const doc = JSON.parse(r.stdout);
    const ms = { median: expect.any(Number), min: expect.any(Number), max: expect.any(Number) };
    expect(doc).toMatchObject({ model: 'random:vit_tiny_patch16_224', backend: expect.any(String), gmacs: expect.any(Number), msPerImage: ms });
    expect(doc.threads).toBe(Math.min(4, os.availableParallelism())); // the default
    expect(doc.gmacs).toBeCloseTo(1.26, 1); // ViT-Ti/16 at 224 px
    expect(doc.msPerImage.min).toBeLessThanOrEqual(doc.msPerImage.median);
    expect(doc.msPerImage.median).toBeLessThanOrEqual(doc.msPerImage.max);
    expect(doc.gemm.length).toBeGreaterThan(0);
    for (const g of doc.gemm) expect(g).toMatchObject({ m: expect.any(Number), n: expect.any(Number), k: expect.any(Number), gflops: expect.any(Number) });
  });

  it('bench --threads 1,2 --json times both thread counts in one run, dense and pruned', async () => {
    const r = await cli(['bench', '--model', 'random:vit_tiny_patch16_224', '--runs', '2', '--threads', '1,2', '--method', 'topk', '--keep', '0.7', '--json']);
    expect(r.code, show(r)).toBe(0);
    const doc = JSON.parse(r.stdout);
    const ms = { median: expect.any(Number), min: expect.any(Number), max: expect.any(Number) };
    expect(doc).toMatchObject({
      threads: 1,
      method: 'topk',
      compare: [{ backend: doc.backend, threads: 2, msPerImage: ms, ratio: expect.any(Number), pruned: { msPerImage: ms, ratio: expect.any(Number) } }],
    });
    expect(doc.compare).toHaveLength(1);
  });

  it('--help of every command exits 0 and prints its usage', async () => {
    const main = await cli(['--help']);
    expect(main.code, show(main)).toBe(0);
    expect(main.stdout).toContain('Usage: vitprune <command>');
    const commands = [...main.stdout.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1]);
    expect(commands).toEqual(expect.arrayContaining(['classify', 'eval', 'bench']));
    const runs = await Promise.all(commands.map((c) => cli([c!, '--help'])));
    runs.forEach((r, i) => {
      expect(r.code, `${commands[i]}: ${show(r)}`).toBe(0);
      expect(r.stdout).toContain(`Usage: vitprune ${commands[i]}`);
      expect(r.stdout).toContain('--help');
      expect(r.stderr).toBe('');
    });
  });

  it('a hub id end to end: downloaded once, then used from the cache', async () => {
    const home = mkdtempSync(path.join(tmp, 'hf-home-shared-'));
    const local = await cli(['classify', '--model', TINY, png]);
    expect(local.code, show(local)).toBe(0);
    const first = await cli(['classify', '--model', 'good/tiny', png], { HF_HOME: home, HF_ENDPOINT: hub.endpoint });
    expect(first.code, show(first)).toBe(0);
    expect(first.stdout).toBe(local.stdout);
    expect(hub.requests.filter((u) => u.startsWith('/good/tiny/')).length).toBeGreaterThan(0);
    const good = () => hub.requests.filter((u) => u.startsWith('/good/')).length;
    const before = good();
    // Second run: from the cache, with the endpoint unreachable to be sure.
    const second = await cli(['classify', '--model', 'good/tiny', png], { HF_HOME: home, HF_ENDPOINT: closedEndpoint });
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toBe(local.stdout);
    expect(second.stderr).toBe('');
    expect(good()).toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------
// A bad input costs only itself: classify, eval and compare go on past unreadable images,
// report each on one stderr line (and in --json), and exit with code 1.

describe.concurrent('a bad input costs only itself', () => {
  const stderrLines = (r: Run, progress?: RegExp) => r.stderr.split('\n').filter((l) => l !== '' && !progress?.test(l));

  /** A folder of good and bad images (name → source file) with a labels CSV. */
  function imageFolder(name: string, images: Record<string, string>): { dir: string; csv: string } {
    const dir = file(name);
    mkdirSync(dir, { recursive: true });
    for (const [target, source] of Object.entries(images)) cpSync(source, path.join(dir, target));
    const csv = file(`${name}.csv`);
    // A label from the name, so that an image has the same one in every folder.
    writeFileSync(
      csv,
      `file,class_index\n${Object.keys(images)
        .map((n) => `${n},${n.charCodeAt(0) % 3}`)
        .join('\n')}\n`,
    );
    return { dir, csv };
  }

  it('classify prints every good result, one stderr line per bad file, exit code 1', async () => {
    const args = ['classify', '--model', TINY, '--top', '2'];
    const [mixed, goodOnly] = await Promise.all([
      cli([...args, png, file('notes.png'), file('truncated.jpg'), file('pattern.jpg'), file('nowhere.png')]),
      cli([...args, png, file('pattern.jpg')]),
    ]);
    expect(goodOnly.code, show(goodOnly)).toBe(0);
    expect(mixed.code, show(mixed)).toBe(1);
    expect(mixed.stdout).toBe(goodOnly.stdout); // the good results, as without the bad files
    expect(mixed.stdout).toContain(`${png}\n`);
    const lines = stderrLines(mixed);
    expect(lines, show(mixed)).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^error: /);
    // Files that are missing or not images are refused before the model loads; a bad JPEG when it is decoded.
    expect(lines[0]).toContain(`${file('notes.png')}: not a JPEG or PNG image (expected FF D8 or 89 50 4E 47 0D 0A 1A 0A, found first bytes 74 68 65`);
    expect(lines[1]).toContain(`${file('nowhere.png')}: cannot read image file: expected a readable file, found no such file (ENOENT)`);
    expect(lines[2]).toContain(`${file('truncated.jpg')}: corrupt JPEG`);
    expect(lines[2]).toContain('truncated');
  });

  it('classify --json: an entry { file, error } in place of each bad file', async () => {
    const args = ['classify', '--model', TINY, '--json'];
    const [mixed, goodOnly] = await Promise.all([
      cli([...args, file('truncated.jpg'), png, tmp, file('pattern.jpg')]),
      cli([...args, png, file('pattern.jpg')]),
    ]);
    expect(mixed.code, show(mixed)).toBe(1);
    const doc = JSON.parse(mixed.stdout);
    const good = JSON.parse(goodOnly.stdout);
    expect(doc).toHaveLength(4);
    expect(doc[0]).toEqual({ file: file('truncated.jpg'), error: expect.stringContaining('corrupt JPEG') });
    expect(doc[1]).toEqual(good[0]);
    expect(doc[2]).toEqual({ file: tmp, error: `${tmp}: cannot read image file: expected a file, found a folder` });
    expect(doc[3]).toEqual(good[1]);
    expect(stderrLines(mixed)).toEqual([`error: ${doc[2].error}`, `error: ${doc[0].error}`]);

    // Every file refused before the model loads: still one entry each.
    const none = await cli([...args, tmp, file('notes.png')]);
    expect(none.code, show(none)).toBe(1);
    expect(JSON.parse(none.stdout)).toEqual([
      { file: tmp, error: doc[2].error },
      { file: file('notes.png'), error: expect.stringContaining('not a JPEG or PNG image') },
    ]);
  });

  it('classify (visualize, trace) check their images before the model: a missing file with a hub model says the file is missing, and nothing is fetched', async () => {
    const missing = file('no-photo.jpg');
    const line = await expectCliError(['classify', '--model', 'unseen/tiny', missing], [missing, 'no such file (ENOENT)'], {
      env: { HF_ENDPOINT: hub.endpoint },
    });
    expect(line).not.toMatch(/hub|HTTP/);
    expect(hub.requests.filter((u) => u.startsWith('/unseen/'))).toEqual([]);
    // Without network: the same; and for the commands that take one image.
    const env = { HF_ENDPOINT: hub.endpoint };
    await Promise.all([
      expectCliError(['classify', missing], [missing, 'no such file (ENOENT)']),
      expectCliError(['visualize', '--model', 'unseen/tiny', '--method', 'topk', '--keep', '0.5', '--out', file('never.png'), missing], [missing, 'ENOENT'], {
        env,
      }),
      expectCliError(['trace', '--model', 'unseen/tiny', '--out', file('never-bundle'), missing], [missing, 'ENOENT'], { env }),
    ]);
    expect(hub.requests.filter((u) => u.startsWith('/unseen/'))).toEqual([]);
  });

  it('classify over many images shows its progress on stderr, stdout keeps one JSON document with --json; --quiet shows none', async () => {
    const dir = file('many-images');
    mkdirSync(dir, { recursive: true });
    const files = Array.from({ length: 12 }, (_, i) => path.join(dir, `img-${String(i).padStart(2, '0')}.png`));
    for (const f of files) cpSync(png, f);
    const [text, json, quiet] = await Promise.all([
      cli(['classify', '--model', TINY, ...files]),
      cli(['classify', '--model', TINY, '--json', ...files]),
      cli(['classify', '--model', TINY, '--quiet', ...files]),
    ]);
    for (const r of [text, json, quiet]) expect(r.code, show(r)).toBe(0);
    for (const r of [text, json]) {
      const lines = stderrLines(r);
      expect(lines.length, show(r)).toBeGreaterThan(1);
      for (const line of lines) expect(line).toMatch(/^classify \[[#-]{20}\] +\d+% \d+\/12 /);
      expect(lines.at(-1)).toMatch(/100% 12\/12 .* in /);
    }
    expect(JSON.parse(json.stdout)).toHaveLength(12);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toBe(text.stdout);
    expect(text.stdout.split('\n').filter((l) => l.startsWith(dir))).toEqual(files);
  });

  it('eval skips unreadable images, lists them (--json skipped, a count in the text), and exits 1; the rest as without them', async () => {
    const mixed = imageFolder('eval-mixed', { 'a.png': png, 'b.jpg': file('truncated.jpg'), 'c.png': file('notes.png'), 'd.jpg': file('pattern.jpg') });
    const clean = imageFolder('eval-clean', { 'a.png': png, 'd.jpg': file('pattern.jpg') });
    const args = (f: { dir: string; csv: string }, ...more: string[]) => ['eval', '--model', TINY, '--images', f.dir, '--labels', f.csv, ...more];
    const [json, oneThread, text, reference] = await Promise.all([
      cli(args(mixed, '--json')),
      cli(args(mixed, '--json', '--threads', '1')), // images loaded on this thread, not on the loader's
      cli(args(mixed)),
      cli(args(clean, '--json')),
    ]);
    expect(reference.code, show(reference)).toBe(0);
    const expected = JSON.parse(reference.stdout);
    for (const r of [json, oneThread]) {
      expect(r.code, show(r)).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.images).toBe(2);
      expect(doc.skipped).toEqual([
        { file: path.join(mixed.dir, 'b.jpg'), error: expect.stringMatching(/^\S+b\.jpg: corrupt JPEG.*truncated/) },
        { file: path.join(mixed.dir, 'c.png'), error: expect.stringContaining('c.png: not a JPEG or PNG image') },
      ]);
      expect({ top1: doc.top1, top5: doc.top5, gmacs: doc.gmacs }).toEqual({ top1: expected.top1, top5: expected.top5, gmacs: expected.gmacs });
      expect(stderrLines(r, /^eval \[/)).toEqual(doc.skipped.map((s: { error: string }) => `error: ${s.error}`));
    }
    expect(text.code, show(text)).toBe(1);
    expect(text.stdout).toMatch(/^model \S+, 2 images \(2 of 4 skipped: unreadable, listed on stderr\), /);
    expect(stderrLines(text, /^eval \[/)).toHaveLength(2);
  });

  it('eval and compare on 2 threads (whole images per thread) give the results of 1 thread bit for bit', async () => {
    const photos = path.join(ROOT, 'fixtures/images');
    const folder = imageFolder('eval-threads', {
      ...Object.fromEntries(readdirSync(photos).map((name) => [name, path.join(photos, name)])),
      'e.png': png,
      'f.jpg': file('pattern.jpg'),
    });
    const common = (threads: string) => [
      '--model',
      'random:vit_tiny_patch16_224',
      '--images',
      folder.dir,
      '--labels',
      folder.csv,
      '--threads',
      threads,
      '--json',
      '--quiet',
    ];
    const evalArgs = (threads: string, method: string[]) => [
      'eval',
      ...common(threads),
      ...method,
      '--predictions',
      file(`eval-threads-${threads}-${method[1]}.json`),
    ];
    const compareArgs = (threads: string) => ['compare', ...common(threads), '--methods', 'random,mctf,zero-tprune', '--budgets', '0.8'];
    const methods = [
      ['--method', 'random', '--keep', '0.6'],
      ['--method', 'mctf', '--budget', '0.8'],
    ];
    const runs = await Promise.all(['1', '2'].flatMap((t) => [...methods.map((m) => cli(evalArgs(t, m))), cli(compareArgs(t))]));
    for (const r of runs) expect(r.code, show(r)).toBe(0);
    const timeless = (r: Run) => JSON.parse(r.stdout, (key, value) => (/^(msPerImage|imagesPerSecond|speedup)$/.test(key) ? undefined : value));
    const [one, two] = [runs.slice(0, 3), runs.slice(3)];
    for (let i = 0; i < 3; i++) expect(timeless(two[i])).toEqual(timeless(one[i]));
    for (const m of methods) expect(readFileSync(file(`eval-threads-2-${m[1]}.json`), 'utf8')).toBe(readFileSync(file(`eval-threads-1-${m[1]}.json`), 'utf8'));
    expect(timeless(one[0]).images).toBe(6);
  });

  it('eval over a folder where no image can be read fails with one line per image and one saying so', async () => {
    const bad = imageFolder('eval-all-bad', { 'b.jpg': file('truncated.jpg'), 'c.png': file('notes.png') });
    const r = await cli(['eval', '--model', TINY, '--images', bad.dir, '--labels', bad.csv, '--quiet']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toBe('');
    const lines = stderrLines(r);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe(`error: none of the 2 images in '${bad.dir}' could be read (each is reported above)`);
  });

  it('compare skips unreadable images the same way, each reported once for every model', async () => {
    const mixed = imageFolder('compare-mixed', { 'a.png': png, 'b.jpg': file('truncated.jpg'), 'd.jpg': file('pattern.jpg') });
    const clean = imageFolder('compare-clean', { 'a.png': png, 'd.jpg': file('pattern.jpg') });
    const args = (f: { dir: string; csv: string }, ...more: string[]) =>
      // A random ViT-Ti (the tiny fixture has too few tokens for a budget); twice: two models.
      [
        'compare',
        '--model',
        'random:vit_tiny_patch16_224,random:vit_tiny_patch16_224',
        '--images',
        f.dir,
        '--labels',
        f.csv,
        '--methods',
        'topk',
        '--budgets',
        '0.7',
        '--quiet',
        ...more,
      ];
    const [json, text, reference] = await Promise.all([cli(args(mixed, '--json')), cli(args(mixed)), cli(args(clean, '--json'))]);
    expect(reference.code, show(reference)).toBe(0);
    expect(json.code, show(json)).toBe(1);
    const docs = JSON.parse(json.stdout);
    const expected = JSON.parse(reference.stdout);
    expect(docs).toHaveLength(2);
    for (const [i, doc] of docs.entries()) {
      expect(doc.images).toBe(2);
      expect(doc.skipped).toEqual([{ file: path.join(mixed.dir, 'b.jpg'), error: expect.stringContaining('corrupt JPEG') }]);
      expect(doc.dense.top1).toBe(expected[i].dense.top1);
      expect(doc.results.map((x: { agreement: number }) => x.agreement)).toEqual(expected[i].results.map((x: { agreement: number }) => x.agreement));
    }
    expect(stderrLines(json)).toEqual([`error: ${docs[0].skipped[0].error}`]);
    expect(text.code, show(text)).toBe(1);
    expect(text.stdout).toContain(`2 images (1 more could not be read and are left out: ${path.join(mixed.dir, 'b.jpg')})`);
  });
});
