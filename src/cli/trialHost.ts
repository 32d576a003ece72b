/**
 * `rxtrain trial-host`: a process `rxtrain sweep` starts for each slot of --parallel, which runs
 * the trials the sweep sends it one after another (src/sweep/trialPool.ts), each exactly as
 * `rxtrain run …` or `rxtrain resume …` would run in a process of its own: the same command-line
 * code, its output appended to the trial's log, a signal of its own. Not listed in --help: it is
 * started with an IPC channel, never by hand.
 *
 * A signal to the host (Ctrl-C reaches the sweep's whole process group) stops the trial it is
 * running as it would have stopped the trial's own process; the host then exits with that signal's
 * code. When the sweep closes the channel the host exits once its trial, if any, has ended.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { interruptedExitCode } from '../pipeline/runSummary.js';
import type { FromHost, ToHost } from '../sweep/trialHostProtocol.js';
import { RxtrainError } from '../util/errors.js';
import type { CliIo, Command } from './command.js';

/** The command, given the command line's entry point it runs each trial with (src/cli.ts's `main`). */
export const trialHostCommand = (main: (argv: readonly string[], io: CliIo) => Promise<number>): Command => ({
  name: 'trial-host',
  help: `Usage: rxtrain trial-host

Started by \`rxtrain sweep\` with an IPC channel, one per --parallel slot: runs the sweep's trials
one after another, each as \`rxtrain run\` or \`rxtrain resume\` would in a process of its own.`,
  options: {},
  async run(positionals, _values, io) {
    if (positionals.length > 0 || !process.send)
      throw new RxtrainError('E_USAGE', 'trial-host is started by rxtrain sweep (it needs an IPC channel)');
    return new Promise<number>((resolve) => {
      let current: { id: number; controller: AbortController } | undefined;
      const end = () => resolve(io.signal?.aborted ? interruptedExitCode(io.signal) : 0);
      io.signal?.addEventListener('abort', () => {
        if (current) current.controller.abort(io.signal!.reason);
        else end();
      });
      process.on('disconnect', () => {
        if (!current) end();
      });
      process.on('message', (message: ToHost) => {
        if (message.type === 'stop') {
          if (current?.id === message.id) current.controller.abort(message.signal);
        } else if (message.type === 'run') void attempt(message.id, message.args, message.logFile);
      });

      async function attempt(id: number, args: string[], logFile: string): Promise<void> {
        const controller = new AbortController();
        current = { id, controller };
        if (io.signal?.aborted) controller.abort(io.signal.reason);
        const log = openSync(logFile, 'a');
        const write = (text: string) => {
          writeSync(log, text);
        };
        let code = 1;
        try {
          code = await main(args, {
            stdout: write,
            stderr: write,
            stderrIsTty: false,
            stdoutIsTty: false,
            env: io.env,
            signal: controller.signal,
          });
        } finally {
          closeSync(log);
          current = undefined;
        }
        if (process.connected) process.send!({ type: 'exited', id, code } satisfies FromHost);
        if (io.signal?.aborted || !process.connected) end();
      }
    });
  },
});
