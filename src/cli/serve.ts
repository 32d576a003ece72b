import { defaultCacheDir } from '../pipeline/run.js';
import { startServer } from '../serve/server.js';
import { RxtrainError } from '../util/errors.js';
import type { Command } from './command.js';

export const serveCommand: Command = {
  name: 'serve',
  help: `Usage: rxtrain serve [DIR…] [--port P] [--host H] [--cache DIR]

Serves a live page of every run under the given directories (default: runs): the report's page,
updated as the runs' event logs grow — curves extend, status and progress change, new runs
appear, deleted ones go. A DIR may be a run directory, a directory of runs, or a directory of
directories of runs. The page needs nothing from the network, and the server hands out only the
listed runs' own files. Stop it with Ctrl-C.

  --port P     port to listen on (default 6007; 0: any free port)
  --host H     address to bind (default 127.0.0.1: this machine only)
  --cache DIR  download and stage cache, to draw misclassified examples (default $RXTRAIN_CACHE or ~/.cache/rxtrain)`,
  options: {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    cache: { type: 'string' },
  },
  async run(positionals, values, io) {
    const portText = (values.port as string | undefined) ?? '6007';
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port > 65535)
      throw new RxtrainError('E_USAGE', `--port ${portText}: expected a port number from 0 to 65535`);
    const dirs = positionals.length ? positionals : ['runs'];
    const server = await startServer({
      dirs,
      port,
      host: (values.host as string | undefined) ?? '127.0.0.1',
      cacheDir: (values.cache as string | undefined) ?? defaultCacheDir(),
      onWarning: (message) => io.stderr(`rxtrain: warning: ${message}\n`),
    });
    const count = server.index.runs().length;
    io.stdout(
      `serving ${count} run${count === 1 ? '' : 's'} under ${dirs.join(', ')} at ${server.url} (Ctrl-C to stop)\n`,
    );
    await new Promise<void>((resolve) => {
      if (io.signal?.aborted) resolve();
      io.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    await server.close();
    return 0;
  },
};
