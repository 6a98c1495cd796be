/**
 * The cluster deployment in infra/, checked without a Docker engine: the compose files are
 * parsed (YAML with merge keys), held to a strict schema of the compose keys archloop uses
 * (a misspelt key fails), and cross-checked against the code they deploy: the worker
 * command against the real CLI, the search attributes against the workflow definitions,
 * vLLM's LoRA limits against the paper preset. `docker compose config` runs too where a
 * compose plugin exists.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { parse } from 'yaml';
import { z } from 'zod';
import { TASK_QUEUES } from '../../src/core/task-queues';
import { register as registerWorker } from '../../src/cli/worker';
import { buildConfig, OrchestrationConfig } from '../../src/core/config';
import { REPO_ROOT } from '../../src/env';
import { searchAttributes } from '../../src/workflows/definitions';

const INFRA = path.join(REPO_ROOT, 'infra');
const read = (name: string) => readFileSync(path.join(INFRA, name), 'utf8');

/** Compose variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$. */
function interpolate(text: string, env: Record<string, string | undefined> = {}): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (match, name?: string, op?: string, arg?: string) => {
    if (match === '$$') return '$';
    const value = env[name!];
    const unset = value === undefined || (op?.startsWith(':') && value === '');
    if (!unset) return value!;
    if (op?.endsWith('?')) throw new Error(`${name}: ${arg}`);
    return op ? arg! : '';
  });
}

const Duration = z.string().regex(/^(\d+(ms|s|m|h))+$/);
const Healthcheck = z.strictObject({
  test: z.tuple([z.enum(['CMD', 'CMD-SHELL'])], z.string()),
  interval: Duration,
  timeout: Duration,
  retries: z.number().int().positive(),
  start_period: Duration,
});
const Condition = z.enum(['service_started', 'service_healthy', 'service_completed_successfully']);
const GpuReservation = z.strictObject({
  resources: z.strictObject({
    reservations: z.strictObject({
      devices: z
        .array(
          z.strictObject({
            driver: z.literal('nvidia'),
            device_ids: z.array(z.string()).optional(),
            count: z.union([z.number(), z.string()]).optional(),
            capabilities: z.array(z.string()),
          }),
        )
        .min(1),
    }),
  }),
});

/** The compose keys archloop's files use; anything else is a typo or needs adding here. */
const Service = z.strictObject({
  image: z.string().min(1),
  build: z.strictObject({ context: z.string(), dockerfile: z.string() }).optional(),
  init: z.boolean().optional(),
  restart: z.string().regex(/^(no|always|unless-stopped|on-failure(:\d+)?)$/).optional(),
  stop_grace_period: Duration.optional(),
  cap_add: z.array(z.string()).optional(),
  security_opt: z.array(z.string()).optional(),
  ipc: z.string().optional(),
  entrypoint: z.array(z.string()).optional(),
  command: z.array(z.union([z.string(), z.number()]).transform(String)).optional(),
  environment: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)).optional(),
  volumes: z.array(z.string()).optional(),
  ports: z.array(z.string()).optional(),
  healthcheck: Healthcheck.optional(),
  depends_on: z.record(z.string(), z.strictObject({ condition: Condition })).optional(),
  deploy: GpuReservation.optional(),
});
type Service = z.infer<typeof Service>;

const ComposeFile = z.strictObject({
  name: z.string(),
  services: z.record(z.string(), Service),
  volumes: z.record(z.string(), z.union([z.null(), z.record(z.string(), z.unknown())])).optional(),
});
type ComposeFile = z.infer<typeof ComposeFile>;

function loadCompose(name: string): ComposeFile {
  // x-* extension fields only carry anchors; merged (<<) into services by the parser.
  const raw = parse(read(name), { merge: true }) as Record<string, unknown>;
  const withoutExtensions = Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('x-')));
  return ComposeFile.parse(withoutExtensions);
}

const head = loadCompose('compose.yaml');
const gpuNode = loadCompose('compose.gpu-node.yaml');
const paper = buildConfig('paper');
const WORKER_ENV = ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'ARCHLOOP_LLM_URL', 'ARCHLOOP_ARTIFACTS', 'ARCHLOOP_HOME'];

function service(file: ComposeFile, name: string): Service {
  const found = file.services[name];
  assert.ok(found, `service ${name}`);
  return found;
}

/** The options `archloop worker` would run with, parsed by the real CLI definition. */
async function parseWorkerCommand(command: readonly string[]): Promise<{ queue: string; concurrency?: string }> {
  const program = new Command('archloop').exitOverride();
  registerWorker(program);
  let parsed: { queue: string; concurrency?: string } | undefined;
  program.commands.find((c) => c.name() === 'worker')!.action((opts: { queue: string; concurrency?: string }) => {
    parsed = opts;
  });
  await program.parseAsync(command.map((part) => interpolate(part)), { from: 'user' });
  assert.ok(parsed, 'worker command parsed');
  return parsed;
}

function gpuDevices(s: Service) {
  return s.deploy?.resources.reservations.devices.filter((d) => d.capabilities.includes('gpu')) ?? [];
}

function mountTarget(volumes: readonly string[] | undefined, source: string): { target: string; readOnly: boolean } | undefined {
  for (const spec of volumes ?? []) {
    const [from, target, mode] = spec.split(':');
    if (from === source) return { target: target!, readOnly: mode === 'ro' };
  }
  return undefined;
}

describe('compose interpolation (test helper)', () => {
  it('follows the compose rules for defaults, errors and escapes', () => {
    assert.equal(interpolate('${A:-x}'), 'x');
    assert.equal(interpolate('${A:-x}', { A: '' }), 'x');
    assert.equal(interpolate('${A-x}', { A: '' }), '');
    assert.equal(interpolate('${A:-x}-${B}', { A: 'a' }), 'a-');
    assert.equal(interpolate('$$HOME'), '$HOME');
    assert.throws(() => interpolate('${A:?set A}'), /A: set A/);
  });
});

describe('infra/compose.yaml', () => {
  it('has every service of the deployment', () => {
    assert.deepEqual(Object.keys(head.services).sort(), [
      'archloop-db',
      'control-worker',
      'gpu-worker',
      'temporal',
      'temporal-db',
      'temporal-namespace',
      'temporal-schema',
      'temporal-ui',
      'vllm',
    ]);
  });

  it('runs one worker per task queue with a concurrency the CLI accepts', async () => {
    for (const [name, queue, concurrency] of [
      ['control-worker', 'control', '8'],
      ['gpu-worker', 'gpu', '1'],
    ] as const) {
      const options = await parseWorkerCommand(service(head, name).command!);
      assert.deepEqual(options, { queue, concurrency }, name);
    }
    assert.equal(TASK_QUEUES.gpu, 'archloop-gpu');
  });

  it('gives workers every environment variable archloop reads, pointing at the compose services', () => {
    for (const name of ['control-worker', 'gpu-worker']) {
      const env = service(head, name).environment!;
      for (const key of WORKER_ENV) assert.ok(env[key], `${name} sets ${key}`);
      const db = new URL(interpolate(env.DATABASE_URL!));
      assert.equal(db.hostname, 'archloop-db');
      assert.equal(db.pathname, `/${interpolate(service(head, 'archloop-db').environment!.POSTGRES_DB!)}`);
      assert.equal(decodeURIComponent(db.password), interpolate(service(head, 'archloop-db').environment!.POSTGRES_PASSWORD!));
      assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
      assert.equal(interpolate(env.TEMPORAL_NAMESPACE!), interpolate(service(head, 'temporal-namespace').environment!.NAMESPACE!));
      const llm = new URL(env.ARCHLOOP_LLM_URL!);
      assert.equal(llm.hostname, 'vllm');
      assert.equal(llm.pathname, '/v1');
      assert.ok(service(head, 'vllm').command!.includes(llm.port), 'vLLM listens on the port workers call');
      assert.deepEqual(mountTarget(service(head, name).volumes, 'artifacts'), { target: env.ARCHLOOP_ARTIFACTS, readOnly: false });
      assert.equal(mountTarget(service(head, name).volumes, 'archloop-home')?.target, env.ARCHLOOP_HOME);
    }
  });

  it('reserves GPUs for vLLM and the gpu worker only', () => {
    assert.equal(gpuDevices(service(head, 'vllm')).length, 1);
    assert.equal(gpuDevices(service(head, 'gpu-worker')).length, 1);
    assert.equal(gpuDevices(service(head, 'control-worker')).length, 0);
    for (const name of Object.keys(head.services).filter((n) => !['vllm', 'gpu-worker'].includes(n))) {
      assert.equal(head.services[name]!.deploy, undefined, `${name} reserves nothing`);
    }
  });

  it('serves the paper model with runtime LoRA loading, large enough for the paper adapters', () => {
    const vllm = service(head, 'vllm');
    const args = vllm.command!.map((part) => interpolate(part));
    const flag = (name: string) => args[args.indexOf(name) + 1];
    assert.ok(args.includes('--enable-lora'));
    assert.equal(vllm.environment!.VLLM_ALLOW_RUNTIME_LORA_UPDATING, 'True');
    assert.ok(Number(flag('--max-lora-rank')) >= paper.lora.r);
    assert.equal(flag('--served-model-name'), paper.llm.model);
    assert.equal(args[0], paper.lora.baseModel, 'vLLM serves the base model the adapters are trained on');
    // Adapters are written by the gpu worker and read by vLLM at the same path.
    assert.deepEqual(mountTarget(vllm.volumes, 'artifacts'), { target: '/var/lib/archloop/artifacts', readOnly: true });
  });

  it('health-checks the stateful services and orders start-up by health', () => {
    for (const name of ['temporal-db', 'archloop-db', 'temporal', 'vllm']) assert.ok(service(head, name).healthcheck, `${name} healthcheck`);
    for (const [name, s] of Object.entries(head.services)) {
      for (const [target, { condition }] of Object.entries(s.depends_on ?? {})) {
        const dependency = service(head, target);
        if (condition === 'service_healthy') assert.ok(dependency.healthcheck, `${name} waits for ${target}'s healthcheck`);
        if (condition === 'service_completed_successfully') assert.match(dependency.restart ?? 'no', /^(no|on-failure)/, `${target} is a one-shot`);
      }
    }
    const deps = (name: string) => head.services[name]!.depends_on ?? {};
    assert.equal(deps('temporal')['temporal-schema']?.condition, 'service_completed_successfully');
    for (const worker of ['control-worker', 'gpu-worker']) {
      assert.equal(deps(worker)['archloop-db']?.condition, 'service_healthy');
      assert.equal(deps(worker)['temporal-namespace']?.condition, 'service_completed_successfully');
    }
    assert.equal(deps('control-worker').vllm?.condition, 'service_healthy');
  });

  it('has no dependency cycle', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string, trail: string[]): void => {
      if (state.get(name) === 'done') return;
      assert.notEqual(state.get(name), 'visiting', `cycle: ${[...trail, name].join(' → ')}`);
      state.set(name, 'visiting');
      for (const next of Object.keys(head.services[name]!.depends_on ?? {})) visit(next, [...trail, name]);
      state.set(name, 'done');
    };
    Object.keys(head.services).forEach((name) => visit(name, []));
  });

  it('registers exactly the search attributes the workflows set', () => {
    const TYPES: Record<string, string> = { INT: 'Int', DOUBLE: 'Double', KEYWORD: 'Keyword', BOOL: 'Bool', TEXT: 'Text', DATETIME: 'Datetime', KEYWORD_LIST: 'KeywordList' };
    const expected = Object.values(searchAttributes).map((key) => `${key.name}=${TYPES[key.type]}`).sort();
    const listed = service(head, 'temporal-namespace').environment!.SEARCH_ATTRIBUTES!.split(/\s+/).sort();
    assert.deepEqual(listed, expected);
  });

  it('mounts scripts and config that exist, and the scripts are valid shell', () => {
    for (const s of Object.values(head.services)) {
      for (const spec of s.volumes ?? []) {
        const source = spec.split(':')[0]!;
        if (source.startsWith('.')) assert.ok(existsSync(path.join(INFRA, source)), `bind source ${source}`);
        else assert.ok(head.volumes && source in head.volumes, `named volume ${source} is declared`);
      }
    }
    for (const name of ['temporal-schema', 'temporal-namespace']) {
      const script = service(head, name).command![0]!.replace('/archloop-temporal/', 'temporal/');
      assert.ok(existsSync(path.join(INFRA, script)), script);
      execFileSync('sh', ['-n', path.join(INFRA, script)]);
    }
  });

  it('documents every variable it reads, with the same defaults, in env.example', () => {
    const documented = new Map(
      read('env.example')
        .split('\n')
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
    const used = [...read('compose.yaml').matchAll(/\$\{([A-Z_]+):-([^}]*)\}/g)];
    assert.ok(used.length > 10);
    for (const [, name, fallback] of used) assert.equal(documented.get(name!), fallback, `${name} in env.example`);
  });
});

describe('infra/compose.gpu-node.yaml', () => {
  it('adds a gpu worker on another machine that joins the same cluster', async () => {
    const worker = service(gpuNode, 'gpu-worker');
    assert.deepEqual(Object.keys(gpuNode.services), ['gpu-worker']);
    assert.deepEqual(await parseWorkerCommand(worker.command!), { queue: 'gpu', concurrency: '1' });
    assert.equal(gpuDevices(worker).length, 1);
    const env = worker.environment!;
    for (const key of WORKER_ENV) assert.ok(env[key], key);
    assert.throws(() => interpolate(env.TEMPORAL_ADDRESS!), /ARCHLOOP_HEAD/, 'the head address is required');
    const at = { ARCHLOOP_HEAD: '10.1.2.3' };
    assert.equal(interpolate(env.TEMPORAL_ADDRESS!, at), '10.1.2.3:7233');
    assert.equal(new URL(interpolate(env.DATABASE_URL!, at)).hostname, '10.1.2.3');
    assert.equal(env.ARCHLOOP_ARTIFACTS, service(head, 'gpu-worker').environment!.ARCHLOOP_ARTIFACTS);
    assert.equal(gpuNode.volumes?.artifacts && (gpuNode.volumes.artifacts as { driver_opts?: { type?: string } }).driver_opts?.type, 'nfs');
  });
});

describe('infra/README.md', () => {
  const readme = read('README.md');

  it('names the task queues, the environment variables and every orchestration knob with its default', () => {
    for (const queue of Object.values(TASK_QUEUES)) assert.ok(readme.includes(`\`${queue}\``), queue);
    for (const key of [...WORKER_ENV, 'HF_TOKEN']) assert.ok(readme.includes(`\`${key}\``), key);
    const defaults = OrchestrationConfig.parse({});
    for (const [key, value] of Object.entries(defaults)) assert.ok(readme.includes(`\`${key}\` ${value}`), `${key} ${value}`);
  });
});

describe('infra/Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds the worker image from the repository with Node 20 and the Python venv', () => {
    for (const file of ['compose.yaml', 'compose.gpu-node.yaml']) {
      const build = service(loadCompose(file), 'gpu-worker').build!;
      assert.equal(path.resolve(INFRA, build.context), REPO_ROOT);
      assert.ok(existsSync(path.join(REPO_ROOT, build.dockerfile)));
    }
    assert.match(dockerfile, /^FROM node:20[-.\w]*$/m);
    for (const [, source] of dockerfile.matchAll(/^COPY (?!\. )(\S+)/gm)) {
      for (const file of source!.split(' ')) assert.ok(existsSync(path.join(REPO_ROOT, file)), `COPY ${file}`);
    }
    assert.match(dockerfile, /pip install .*-r python\/requirements\.txt/);
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /bubblewrap/);
    assert.match(dockerfile, /^ENTRYPOINT \["archloop"\]$/m);
    const ignored = read('Dockerfile.dockerignore');
    for (const entry of ['node_modules', '.venv', '.git']) assert.match(ignored, new RegExp(`^${entry.replace('.', '\\.')}$`, 'm'));
  });
});

describe('docker compose config', () => {
  const available = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;

  it('accepts both compose files', { skip: available ? false : 'no docker compose plugin on this machine' }, () => {
    const env = { ...process.env, ARCHLOOP_HEAD: '10.1.2.3' };
    for (const file of ['compose.yaml', 'compose.gpu-node.yaml']) {
      execFileSync('docker', ['compose', '-f', path.join(INFRA, file), 'config', '--quiet'], { env, stdio: 'pipe' });
    }
  });
});
