/**
 * `archloop corpus import-lemur`: the LEMUR architectures with their CIFAR-10 first-epoch
 * accuracies, from the nn-dataset wheel into the corpus as seed entries. Idempotent: a
 * re-run inserts nothing and changes nothing; another wheel version updates what differs.
 */
import type { Queryable } from '../db/pool';
import {
  bestTrial,
  followsContract,
  licenceFor,
  parseLayout,
  parseLicenceRule,
  spdxFromTitle,
  type LemurArchitecture,
  type LicenceRule,
} from './lemur-layout';
import { upsertSeedEntries, type SeedEntry, type UpsertCounts } from '../db/corpus';
import { listZipEntries, readZipTexts } from './wheel-zip';

export const LEMUR_SOURCE = 'lemur';
/** The dataset LEMUR's accuracies were measured on, in archloop's spelling. */
const LEMUR_DATASET = 'cifar10';
/** Architectures read per zipfile process (each one re-reads the 118k-entry directory). */
const CHUNK = 2000;
const MAX_SKIP_LOGS = 5;

export interface ImportOptions {
  wheel: string;
  /** Import at most this many architectures (first by name); undefined = all. */
  limit?: number;
  /** Skip programs longer than this many characters (small models fine-tune on short pairs). */
  maxChars?: number;
  log?: (line: string) => void;
}

export interface ImportSummary extends UpsertCounts {
  wheel: string;
  version: string | null;
  /** Architectures in the wheel with code and CIFAR-10 statistics. */
  available: number;
  considered: number;
  skipped: { noCifar10Stats: number; emptyCode: number; notContract: number; noTrials: number; badStats: number; tooLong: number };
  licences: Record<string, number>;
}

export function lemurSourceKey(name: string): string {
  return `${LEMUR_SOURCE}:${name}`;
}

/** A corpus entry from one architecture's code and epoch-1 statistics; undefined without trials (pure). */
export function toSeedEntry(
  arch: LemurArchitecture,
  code: string,
  statText: string,
  licence: string,
  version: string | null,
): SeedEntry | undefined {
  const best = bestTrial(statText);
  if (!best) return undefined;
  return {
    sourceKey: lemurSourceKey(arch.name),
    name: arch.name,
    code,
    dataset: LEMUR_DATASET,
    accuracy: best.accuracy,
    licence,
    provenance: {
      package: 'nn-dataset',
      version,
      codePath: arch.codePath,
      statPath: arch.statPath,
      epochsRecorded: arch.epochs,
      // accuracy = the best trial after one epoch; its settings:
      bestTrial: { uid: best.uid, transform: best.transform, batch: best.batch, lr: best.lr, momentum: best.momentum },
    },
  };
}

async function licenceRules(wheel: string, files: string[], packageFile: string | null): Promise<{ rules: LicenceRule[]; fallback: string }> {
  const texts = await readZipTexts(wheel, packageFile ? [...files, packageFile] : files);
  return {
    rules: files.map((file) => parseLicenceRule(texts.get(file) ?? '')),
    fallback: packageFile ? spdxFromTitle(texts.get(packageFile) ?? '') : 'MIT',
  };
}

export async function importLemur(db: Queryable, options: ImportOptions): Promise<ImportSummary> {
  const log = options.log ?? (() => {});
  const layout = parseLayout(await listZipEntries(options.wheel));
  if (layout.architectures.length === 0) {
    throw new Error(`${options.wheel} holds no architectures with CIFAR-10 statistics (ab/nn/nn/*.py + ab/nn/stat/train/img-classification_cifar-10_acc_*); nn-dataset 2.2.x wheels ship none, use 2.1.2`);
  }
  const { rules, fallback } = await licenceRules(options.wheel, layout.licenceFiles, layout.packageLicenceFile);
  const limit = options.limit ?? Infinity;
  const summary: ImportSummary = {
    wheel: options.wheel,
    version: layout.version,
    available: layout.architectures.length,
    considered: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    skipped: { ...layout.skipped, notContract: 0, noTrials: 0, badStats: 0, tooLong: 0 },
    licences: {},
  };
  let accepted = 0;
  for (let start = 0; start < layout.architectures.length && accepted < limit; start += CHUNK) {
    const chunk = layout.architectures.slice(start, start + CHUNK);
    const texts = await readZipTexts(options.wheel, chunk.flatMap((arch) => [arch.codePath, arch.statPath]));
    const entries: SeedEntry[] = [];
    for (const arch of chunk) {
      if (accepted >= limit) break;
      summary.considered++;
      const code = texts.get(arch.codePath) ?? '';
      if (options.maxChars !== undefined && code.length > options.maxChars) {
        summary.skipped.tooLong++;
        continue;
      }
      if (!followsContract(code)) {
        summary.skipped.notContract++;
        continue;
      }
      let entry: SeedEntry | undefined;
      try {
        entry = toSeedEntry(arch, code, texts.get(arch.statPath) ?? '', licenceFor(arch.name, rules, fallback), layout.version);
      } catch (error) {
        if (summary.skipped.badStats++ < MAX_SKIP_LOGS) log(`skipping ${arch.name}: unreadable ${arch.statPath}: ${(error as Error).message.slice(0, 200)}`);
        continue;
      }
      if (!entry) {
        summary.skipped.noTrials++;
        continue;
      }
      entries.push(entry);
      summary.licences[entry.licence] = (summary.licences[entry.licence] ?? 0) + 1;
      accepted++;
    }
    const counts = await upsertSeedEntries(db, LEMUR_SOURCE, entries);
    summary.inserted += counts.inserted;
    summary.updated += counts.updated;
    summary.unchanged += counts.unchanged;
    log(`${accepted}/${Math.min(limit, layout.architectures.length)} architectures accepted (${summary.considered} read)`);
  }
  return summary;
}
