/**
 * Chaos harness: N trials of a short real run in a cluster's shape — two control and two
 * gpu workers as separate processes (`archloop worker --queue control|gpu`) on one Temporal
 * dev server, real Postgres, the embedded LLM server — in each of which one process among
 * the workers, Temporal, Postgres and the LLM server is SIGKILLed at a random moment and
 * restarted after a random pause (workers: a new worker process; services: `archloop
 * services up --only <name>`, same state dir, same data). After each run it counts lost and
 * duplicated candidates (per cycle and sample index), corpus entries and adapters, checks
 * that the run completed, and lists which worker ran what while a worker was down.
 *
 *   node --import tsx bench/chaos.ts [--trials 20] [--seed N] [--home DIR] [--out DIR]
 *                                   [--targets control-1,gpu-2,temporal,...] [--no-kill] [--keep]
 *
 * It uses a state dir of its own (default .archloop/chaos) with fixed ports, so it never
 * touches another Temporal server or another run. Writes <out>/chaos-<time>.json (every
 * trial) and .md (the table); prints the table.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import pg from 'pg';
import { buildConfig, type RunConfig } from '../src/core/config';
import { runAdapters } from '../src/db/adapters';
import { outcomeRows } from '../src/db/candidates';
import { runAdmissions } from '../src/db/corpus';
import { runStatus } from '../src/db/runs';
import '../src/db/pool'; // registers the bigint → number parser the src/db row schemas rely on
import { REPO_ROOT } from '../src/env';
import { embeddedModelName } from '../src/services/llm';
import { freePort } from '../src/services/process';
import { cycleWorkflowId } from '../src/workflows/definitions';
import { buildLemurFixtureWheel } from '../test/helpers/lemur';
import {
  countAdapters,
  countCandidates,
  countCorpus,
  formatTable,
  placements,
  rerunsAfter,
  TARGETS,
  totals,
  type HistoryEvent,
  type Placement,
  type Target,
  type TrialResult,
} from './chaos-lib';

const BIN = path.join(REPO_ROOT, 'bin', 'archloop');

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    seed: { type: 'string' },
    home: { type: 'string', default: path.join(REPO_ROOT, '.archloop', 'chaos') },
    out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'chaos-out') },
    targets: { type: 'string', default: TARGETS.join(',') },
    'no-kill': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'trial-timeout-s': { type: 'string', default: '1200' },
  },
});

// ---- a seeded random source, so a trial sequence can be replayed -------------------------
let seed = Number(args.seed ?? randomBytes(4).readUInt32LE());
const firstSeed = seed;
function random(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const uniform = (lo: number, hi: number) => lo + random() * (hi - lo);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

// ---- environment --------------------------------------------------------------------------
const home = path.resolve(args.home!);
const outDir = path.resolve(args.out!);
mkdirSync(home, { recursive: true });
mkdirSync(outDir, { recursive: true });
const logDir = path.join(home, 'chaos-logs');
mkdirSync(logDir, { recursive: true });

function log(line: string): void {
  console.error(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** Fixed ports for this state dir (chosen once), so restarts come back where workers look. */
async function ports(): Promise<Record<string, string>> {
  const file = path.join(home, 'chaos-ports.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const temporal = await freePort(27233);
  const ui = await freePort(28233);
  const llm = await freePort(28008);
  const chosen = { ARCHLOOP_TEMPORAL_PORT: String(temporal), ARCHLOOP_TEMPORAL_UI_PORT: String(ui), ARCHLOOP_LLM_PORT: String(llm) };
  writeFileSync(file, JSON.stringify(chosen));
  return chosen;
}

let env: NodeJS.ProcessEnv = {};

function archloop(argv: string[], timeoutMs = 600_000): { code: number | null; out: string } {
  const r = spawnSync(BIN, argv, { env, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

interface ServicesJson {
  postgres?: { url: string; pid?: number };
  temporal?: { address: string; pid?: number };
  llm?: { baseUrl: string; pid?: number };
}
const servicesJson = (): ServicesJson => JSON.parse(readFileSync(path.join(home, 'services.json'), 'utf8'));

// ---- processes ----------------------------------------------------------------------------
interface WorkerProc {
  name: 'control-1' | 'control-2' | 'gpu-1' | 'gpu-2';
  queue: 'control' | 'gpu';
  child: ChildProcess;
  pid: number;
  generation: number;
  exited: boolean;
}
const workers = new Map<string, WorkerProc>();
/** identity (pid@host) → worker name with its generation, e.g. control-1#2. */
const identities = new Map<string, string>();

function startWorker(name: WorkerProc['name'], generation = 1): WorkerProc {
  const queue = name.startsWith('gpu') ? 'gpu' : 'control';
  const logFd = openSync(path.join(logDir, `${name}.log`), 'a');
  const child = spawn(BIN, ['worker', '--queue', queue], { env, stdio: ['ignore', logFd, logFd], detached: true });
  closeSync(logFd);
  const proc: WorkerProc = { name, queue, child, pid: child.pid!, generation, exited: false };
  child.on('exit', () => (proc.exited = true));
  workers.set(name, proc);
  identities.set(`${child.pid}@${os.hostname()}`, generation === 1 ? name : `${name}#${generation}`);
  return proc;
}

/** Descendants of `pid` (from /proc), with their command lines. */
function descendants(pid: number): Array<{ pid: number; cmd: string }> {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [child, parent] of parentOf) if (parent === p) (out.push(child), queue.push(child));
  }
  return out.map((p) => ({ pid: p, cmd: cmdline(p) }));
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120);
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function kill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

// ---- Temporal, with reconnects (the server itself is among the victims) -----------------
/** Each call gets a deadline: a call sent while the server restarts can otherwise hang forever. */
async function withClient<T>(fn: (client: Client) => Promise<T>, attempts = 60): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address: servicesJson().temporal!.address, connectTimeout: 3000 });
      const client = new Client({ connection });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('Temporal call timed out')), 25_000)));
      try {
        return await Promise.race([connection.withDeadline(Date.now() + 20_000, () => fn(client)), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw error; // an answer, not an outage
      last = error;
      await sleep(2000);
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }
  throw last;
}

async function workflowStatus(runId: string): Promise<string> {
  return withClient(async (client) => (await client.workflow.getHandle(runId).describe()).status.name);
}

async function history(workflowId: string): Promise<HistoryEvent[]> {
  return withClient(async (client) => ((await client.workflow.getHandle(workflowId).fetchHistory()).events ?? []) as HistoryEvent[]);
}

// ---- the run -----------------------------------------------------------------------------
/**
 * The smallest real run that goes through every stage: one cycle of 2 samples in 2
 * activities (so both control workers can take one), validate and train in the sandbox on
 * a small synthetic dataset, novelty, selection, a one-step LoRA fine-tune and its
 * publication (no seed fine-tune: it is the same stage again, and a minute on 2 cores).
 * Short heartbeats, so a dead worker's activity moves on within seconds; everything else
 * is the demo preset.
 */
function chaosConfig(): RunConfig {
  return buildConfig('demo', {
    name: 'chaos',
    cycles: 1,
    dataset: { name: 'synthetic', syntheticTrainSize: 256, syntheticTestSize: 128 },
    training: { batchSize: 32, timeLimitS: 60, threads: 1, maxTrainImages: 0 },
    llm: { model: embeddedModelName(env), requestTimeoutS: 300 },
    sampling: { samplesPerCycle: 2, samplesPerActivity: 1, maxNewTokens: 256, repair: 'none', baselineSamples: 0 },
    prompt: { referenceMaxChars: 1200 },
    selection: { minAccuracy: 0.2, fallbackAccuracy: 0.1, fallbackMinCount: 1 },
    lora: { baseModel: embeddedModelName(env), seedFineTune: false, maxSteps: 1, maxSeqLen: 1024, maxPairs: 4, checkpointEvery: 1 },
    orchestration: {
      heartbeatTimeoutS: 20,
      sampleTimeoutS: 600,
      validateTimeoutS: 240,
      trainTimeoutS: 300,
      noveltyTimeoutS: 120,
      fineTuneTimeoutS: 900,
      publishTimeoutS: 300,
    },
  });
}

async function audit(url: string, runId: string, config: RunConfig) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const candidates = await outcomeRows(client, runId);
    const corpus = await runAdmissions(client, runId);
    const adapters = await runAdapters(client, runId);
    const status = await runStatus(client, runId);
    const sampledCycles = Array.from({ length: config.cycles }, (_, i) => i + 1);
    const adapterCycles = config.lora.enabled ? [...(config.lora.seedFineTune ? [0] : []), ...sampledCycles] : [];
    return {
      runStatus: status ?? '(no row)',
      candidates: countCandidates(candidates, sampledCycles, config.sampling.samplesPerCycle),
      corpus: countCorpus(candidates, corpus),
      adapters: countAdapters(adapters, adapterCycles),
    };
  } finally {
    await client.end();
  }
}

async function runPlacements(runId: string, config: RunConfig): Promise<Placement[]> {
  const first = config.lora.enabled && config.lora.seedFineTune ? 0 : 1;
  const ids = [runId, ...Array.from({ length: config.cycles - first + 1 }, (_, i) => cycleWorkflowId(runId, first + i))];
  const all: Placement[] = [];
  for (const id of ids) all.push(...placements(await history(id).catch(() => [])));
  return all;
}

// ---- one trial ---------------------------------------------------------------------------
/** The kill comes at a uniform moment in [5 s, 0.9 × the shortest run so far]: it should land mid-run. */
let expectedRunS = 240; // refined from the trials that complete

async function restartService(name: 'temporal' | 'postgres' | 'llm'): Promise<{ seconds: number; error: string | null }> {
  const t0 = Date.now();
  let error: string | null = null;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const r = archloop(['services', 'up', '--only', name]);
    if (r.code === 0) return { seconds: (Date.now() - t0) / 1000, error };
    error = `attempt ${attempt}: ${r.out.split('\n').slice(-2).join(' | ')}`;
    log(`services up --only ${name} failed (${error}); retrying`);
    await sleep(5000);
  }
  return { seconds: (Date.now() - t0) / 1000, error };
}

function victimPid(target: Target): number | undefined {
  if (target.startsWith('control') || target.startsWith('gpu')) return workers.get(target)?.pid;
  return servicesJson()[target as 'temporal' | 'postgres' | 'llm']?.pid;
}

async function trial(n: number, targets: Target[], config: RunConfig, configFile: string): Promise<TrialResult> {
  const runId = `chaos-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${n}`;
  const target: Target | 'none' = args['no-kill'] ? 'none' : pick(targets);
  const killAtS = target === 'none' ? null : Math.round(uniform(5, Math.max(10, 0.9 * expectedRunS)));
  const downS = target === 'none' ? null : Math.round(uniform(2, 20));
  const notes: string[] = [];
  const started = Date.now();
  const r = archloop(['run', '--preset', 'demo', '--config', configFile, '--id', runId], 120_000);
  if (r.code !== 0) throw new Error(`could not start ${runId}: ${r.out}`);
  log(`trial ${n}: ${runId} started; ${target === 'none' ? 'no kill' : `SIGKILL ${target} at +${killAtS} s, down ${downS} s`}`);

  let landed = false;
  let restartS: number | null = null;
  let restartError: string | null = null;
  let orphans: string[] = [];
  let historySurvived: boolean | null = null;
  let downWindow: [number, number] | null = null;
  let killedAt: number | null = null;
  let victimIdentity: string | null = null;
  const workersBefore = new Map([...workers].map(([k, w]) => [k, w.pid]));

  const done = (status: string) => !['RUNNING', 'CONTINUED_AS_NEW'].includes(status);
  const deadline = started + Number(args['trial-timeout-s']) * 1000;
  let status = 'RUNNING';

  if (target !== 'none' && killAtS !== null && downS !== null) {
    while (Date.now() < started + killAtS * 1000) await sleep(250);
    status = await workflowStatus(runId);
    landed = !done(status);
    const pid = victimPid(target);
    if (!pid) throw new Error(`no pid for ${target}`);
    const children = descendants(pid);
    killedAt = Date.now();
    kill(pid);
    log(`trial ${n}: killed ${target} (pid ${pid}, ${children.length} children) at +${Math.round((killedAt - started) / 1000)} s; run was ${status}`);
    if (target.startsWith('control') || target.startsWith('gpu')) victimIdentity = `${pid}@${os.hostname()}`;
    // Processes the victim had started that outlive it by 10 s (checked while the pause goes on).
    const orphanCheck = sleep(10_000).then(() => children.filter((c) => alive(c.pid)).map((c) => `${c.pid} ${c.cmd}`));
    await sleep(downS * 1000);
    const restartAt = Date.now();
    downWindow = [killedAt, restartAt];
    if (target === 'temporal' || target === 'postgres' || target === 'llm') {
      const restart = await restartService(target);
      restartS = restart.seconds;
      restartError = restart.error;
      log(`trial ${n}: ${target} restarted in ${Math.round(restart.seconds)} s${restart.error ? ` (after: ${restart.error})` : ''}`);
    } else {
      const old = workers.get(target)!;
      startWorker(target, old.generation + 1);
      restartS = 0;
    }
    orphans = await orphanCheck;
    for (const orphan of orphans) log(`trial ${n}: orphan of ${target} still alive 10 s after the kill: ${orphan}`);
    if (target === 'temporal') {
      historySurvived = await withClient((c) => c.workflow.getHandle(runId).describe()).then(() => true, () => false);
      if (!historySurvived) notes.push('the run was gone from Temporal after the restart');
    }
  }

  while (Date.now() < deadline) {
    status = await workflowStatus(runId).catch(() => 'UNKNOWN');
    if (done(status) && status !== 'UNKNOWN') break;
    // A worker that died on its own (not the victim) is noted and replaced, so the trial can go on.
    for (const w of workers.values()) {
      if (w.exited) {
        notes.push(`${identities.get(`${w.pid}@${os.hostname()}`) ?? w.name} exited on its own`);
        log(`trial ${n}: ${w.name} (pid ${w.pid}) exited on its own; restarting it`);
        startWorker(w.name, w.generation + 1);
      }
    }
    await sleep(3000);
  }
  const completed = status === 'COMPLETED';
  if (!done(status)) {
    notes.push(`still ${status} after ${args['trial-timeout-s']} s: terminated`);
    await withClient((c) => c.workflow.getHandle(runId).terminate('chaos trial timeout')).catch(() => undefined);
  }
  const durationS = (Date.now() - started) / 1000;
  if (completed) expectedRunS = Math.min(expectedRunS, durationS);

  const counts = await audit(servicesJson().postgres!.url, runId, config);
  if (completed && counts.runStatus !== 'completed') notes.push(`runs.status is ${counts.runStatus}`);
  const placed = await runPlacements(runId, config);
  const retries: Record<string, number> = {};
  for (const p of placed) if (p.attempt > 1) retries[p.activity] = (retries[p.activity] ?? 0) + 1;
  let whileDown: Record<string, string[]> | null = null;
  if (downWindow && victimIdentity) {
    whileDown = {};
    for (const p of placed) {
      if (p.startedAt >= downWindow[0] && p.startedAt <= downWindow[1]) {
        const who = identities.get(p.identity) ?? p.identity;
        (whileDown[who] ??= []).push(p.activity);
      }
    }
    if (whileDown[identities.get(victimIdentity) ?? victimIdentity]) notes.push('the killed worker was credited with work while down (impossible)');
  }
  const rerunAfterKill = killedAt === null ? [] : rerunsAfter(placed, killedAt, (id) => identities.get(id) ?? id);
  const collateral = [...workersBefore]
    .filter(([name, pid]) => name !== target && workers.get(name)?.pid !== pid)
    .map(([name, pid]) => `${name} (pid ${pid})`);

  return {
    trial: n,
    runId,
    target,
    killAtS,
    downS,
    landed,
    restartS,
    restartError,
    completed,
    workflowStatus: status,
    durationS,
    candidates: counts.candidates,
    corpus: counts.corpus,
    adapters: counts.adapters,
    retries,
    whileDown,
    rerunAfterKill,
    orphans,
    collateral,
    historySurvived,
    notes,
  };
}

// ---- main --------------------------------------------------------------------------------
async function main(): Promise<void> {
  const trials = Number(args.trials);
  const targets = args.targets!.split(',').map((t) => t.trim()) as Target[];
  const unknown = targets.filter((t) => !TARGETS.includes(t));
  if (unknown.length || !Number.isInteger(trials) || trials < 1) {
    throw new Error(`usage: --trials N (≥ 1) --targets ${TARGETS.join(',')} (unknown: ${unknown.join(', ')})`);
  }
  // The smallest embedded model unless asked otherwise: chaos is about the infrastructure,
  // and a trial must stay short on 2 cores.
  env = { ARCHLOOP_LLM_MODEL: 'smollm2-135m-instruct', ...process.env, ARCHLOOP_HOME: home, ...(await ports()) };
  for (const key of ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'ARCHLOOP_LLM_URL', 'ARCHLOOP_LLM_API_KEY', 'OPENAI_API_KEY']) delete env[key];

  log(`state dir ${home}, seed ${firstSeed}, ${trials} trials, targets ${targets.join(',')}`);
  const up = archloop(['services', 'up']);
  if (up.code !== 0) throw new Error(`services up failed: ${up.out}`);
  log(up.out.split('\n').join(' | '));
  const db = path.join(home, 'temporal', 'temporal.db');
  if (!existsSync(db) || statSync(db).size === 0) throw new Error(`the Temporal dev server keeps no SQLite file at ${db}`);

  // The LEMUR fixture programs (short, contract-conforming) as the seed corpus.
  const wheel = buildLemurFixtureWheel(mkdirTemp());
  const imported = archloop(['corpus', 'import-lemur', '--wheel', wheel]);
  if (imported.code !== 0) throw new Error(`corpus import failed: ${imported.out}`);

  const config = chaosConfig();
  const configFile = path.join(home, 'chaos-config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  for (const name of ['control-1', 'control-2', 'gpu-1', 'gpu-2'] as const) startWorker(name);
  await sleep(15_000); // workers start polling

  const results: TrialResult[] = [];
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const jsonFile = path.join(outDir, `chaos-${stamp}.json`);
  const mdFile = path.join(outDir, `chaos-${stamp}.md`);
  const save = () => {
    const summary = {
      command: `node --import tsx bench/chaos.ts ${process.argv.slice(2).join(' ')}`.trim(),
      seed: firstSeed,
      machine: { cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30), loadAvg: os.loadavg() },
      config,
      totals: totals(results),
      trials: results,
    };
    writeFileSync(jsonFile, `${JSON.stringify(summary, null, 2)}\n`);
    writeFileSync(mdFile, `${formatTable(results)}\n`);
  };
  try {
    // N trials whose kill landed mid-run: a kill that came after the run had finished tested
    // nothing, so its trial is kept in the record and another one is added (at most N more).
    const landed = () => results.filter((r) => r.landed || r.target === 'none').length;
    for (let n = 1; landed() < trials && n <= 2 * trials; n++) {
      const result = await trial(n, targets, config, configFile);
      results.push(result);
      save();
      log(`trial ${n}: ${result.completed ? 'completed' : `NOT completed (${result.workflowStatus})`} in ${Math.round(result.durationS)} s; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    }
  } finally {
    save();
    console.log(formatTable(results));
    console.log(`\n${jsonFile}\n${mdFile}`);
    for (const w of workers.values()) kill(w.pid, 'SIGTERM');
    await sleep(3000);
    for (const w of workers.values()) if (alive(w.pid)) kill(w.pid);
    if (!args.keep) archloop(['services', 'down']);
  }
}

function mkdirTemp(): string {
  const dir = path.join(home, `chaos-wheel-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

main().catch((error) => {
  console.error(`chaos: ${error instanceof Error ? error.stack : String(error)}`);
  for (const w of workers.values()) kill(w.pid);
  process.exit(1);
});
