/** Reads a run config for the CLI: a preset, optionally overridden by a JSON file. */
import { readFileSync } from 'node:fs';
import { buildConfig, configWarnings, PresetName, type RunConfig } from '../core/config';

export function readCliConfig(preset: string, configFile?: string, cycles?: string): RunConfig {
  const name = PresetName.safeParse(preset);
  if (!name.success) throw new Error(`unknown preset "${preset}" (known: ${PresetName.options.join(', ')})`);
  let overrides: Record<string, unknown> = {};
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (error) {
      throw new Error(`cannot read config file ${configFile}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    try {
      overrides = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`config file ${configFile} is not valid JSON: ${(error as Error).message}`);
    }
  }
  for (const warning of configWarnings(overrides)) console.error(`archloop: warning: ${warning}`);
  if (cycles !== undefined) overrides = { ...overrides, cycles: Number(cycles) };
  return buildConfig(name.data, overrides);
}
