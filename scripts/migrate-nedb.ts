/**
 * npm run migrate-store [-- --data-dir DIR]
 * One command from the first embedded store (NeDB files in DATA_DIR) to the SQLite store: imports
 * conversations.db and messages.db into DATA_DIR/troupe.sqlite, then moves the NeDB files to
 * DATA_DIR/nedb-migrated/. Stop the server first (one process owns a directory).
 */
import { ConfigError, loadConfig } from '../config';
import { NedbImportError, importNedbDirectory } from '../api/store/nedb-import';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flag = argv.findIndex((argument) => argument === '--data-dir' || argument.startsWith('--data-dir='));
  let directory: string | undefined;
  if (flag >= 0) directory = argv[flag].includes('=') ? argv[flag].split('=')[1] : argv[flag + 1];
  if (argv.includes('--help') || (flag >= 0 && !directory)) {
    process.stdout.write('usage: npm run migrate-store [-- --data-dir DIR]   (default: DATA_DIR)\n');
    process.exit(flag >= 0 && !directory ? 2 : 0);
  }
  directory ??= loadConfig().dataDir;
  const startedAt = Date.now();
  const report = await importNedbDirectory(directory);
  process.stdout.write(
    `migrated ${report.conversations} conversations and ${report.messages} messages into ${directory}/troupe.sqlite ` +
      `in ${Date.now() - startedAt} ms` +
      (report.skippedLines > 0 ? ` (${report.skippedLines} unreadable lines skipped)` : '') +
      `; the NeDB files are kept in ${report.backupDirectory}\n`,
  );
}

main().catch((error: unknown) => {
  const known = error instanceof NedbImportError || error instanceof ConfigError;
  process.stderr.write(`migrate-store: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(known ? 2 : 1);
});
