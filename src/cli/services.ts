/** `archloop services up|down|status`. */
import type { Command } from 'commander';
import { SERVICE_NAMES, servicesDown, servicesStatus, servicesUp, type ServiceName } from '../services/index';

function parseOnly(value: string | undefined): ServiceName[] | undefined {
  if (!value) return undefined;
  const names = value.split(',').map((s) => s.trim());
  const bad = names.filter((n) => !(SERVICE_NAMES as readonly string[]).includes(n));
  if (bad.length) throw new Error(`unknown service ${bad.join(', ')} (known: ${SERVICE_NAMES.join(', ')})`);
  return names as ServiceName[];
}

export function register(program: Command): void {
  const services = program.command('services').description('start, stop and check the local services');
  const only = ['--only <names>', `comma-separated subset of ${SERVICE_NAMES.join(',')}`] as const;
  services
    .command('up')
    .description('start Postgres, the Temporal dev server and the embedded LLM server (idempotent)')
    .option(...only)
    .action(async (opts: { only?: string }) => {
      await servicesUp({ services: parseOnly(opts.only), log: (line) => console.log(line) });
    });
  services
    .command('down')
    .description('stop the services started by `services up`')
    .option(...only)
    .action(async (opts: { only?: string }) => {
      await servicesDown({ services: parseOnly(opts.only), log: (line) => console.log(line) });
    });
  services
    .command('status')
    .description('health of each service')
    .action(async () => {
      const rows = await servicesStatus();
      for (const row of rows) {
        console.log(`${row.name.padEnd(9)} ${row.healthy ? 'up  ' : 'down'}  ${row.where}${row.managed ? '' : '  (external)'}`);
      }
      if (rows.some((row) => !row.healthy)) process.exitCode = 1;
    });
}
