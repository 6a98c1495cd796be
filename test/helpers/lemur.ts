/** The LEMUR fixture (test/fixtures/lemur-wheel, nn-dataset 2.1.2's real layout) zipped as a wheel. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pythonBin, REPO_ROOT } from '../../src/env';

export const LEMUR_FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'lemur-wheel');

/** Zips the fixture tree the way a wheel is zipped (paths relative to its root); returns the file. */
export function buildLemurFixtureWheel(dir: string): string {
  const base = path.join(dir, 'nn_dataset-2.1.2-py3-none-any');
  execFileSync(pythonBin(), ['-c', 'import shutil, sys; shutil.make_archive(sys.argv[1], "zip", sys.argv[2])', base, LEMUR_FIXTURE]);
  return `${base}.zip`;
}
