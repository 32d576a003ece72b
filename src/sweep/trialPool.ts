/**
 * Trials run by a few long-lived rxtrain processes, the trial hosts (`rxtrain trial-host`, one per
 * slot of --parallel), instead of a process per trial. Each trial still runs alone in its host, as
 * `rxtrain run`/`resume` would in a process of its own, with its run directory and log; but Node's
 * start, the loading of rxtrain's modules and the exit — ~0.5 s a trial on the 2-core machines the
 * bench runs on, against ~0.6 s of training for a trial of the default experiment — are paid once
 * per host instead of once per trial.
 *
 * The scheduler sees the TrialAttempt a process of its own gave it: `kill('SIGTERM')` stops that
 * trial (it checkpoints and ends with 143); a host that dies (killed, crashed) ends its attempt
 * with its own exit. A trial that fails (exit 1 or 2) retires its host, so that whatever went
 * wrong cannot reach the next trial. Hosts stay in the sweep's process group: a Ctrl-C, or a kill
 * of the group, reaches them as it reached trial processes.
 */
import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { RUN_FILES } from '../pipeline/runDir.js';
import type { FromHost, ToHost } from './trialHostProtocol.js';
import type { TrialLauncher } from './trialLauncher.js';
import { spawnLogged, type TrialExit } from './trialProcess.js';
import { TrialWatcher } from './trialWatcher.js';

/** The log of the hosts themselves (what a trial's own log does not take), beside the trials' logs. */
export const HOSTS_LOG = 'trial-hosts.log';

interface Host {
  child: ChildProcess;
  /** The attempt it runs, and how to end it. */
  attempt?: { id: number; settle: (exit: TrialExit) => void };
  gone: Promise<void>;
}

export interface TrialPool extends TrialLauncher {
  /** Close the idle hosts' channels and wait until every host started has exited. */
  close(): Promise<void>;
}

/** Hosts started as `command trial-host` (command: node, its flags, bin/rxtrain.js). */
export function trialPool(o: {
  command: readonly string[];
  cacheDir: string;
  env: NodeJS.ProcessEnv;
}): TrialPool {
  /** The hosts that may take an attempt. */
  const hosts = new Set<Host>();
  /** Every host started, retired ones too: close() waits for each to be gone. */
  const started: Host[] = [];
  let attempts = 0;

  function startHost(logDir: string): Host {
    const { child, exited } = spawnLogged([...o.command, 'trial-host'], join(logDir, HOSTS_LOG), o.env, true);
    const host: Host = {
      child,
      gone: exited.then((exit) => {
        hosts.delete(host);
        const attempt = host.attempt;
        host.attempt = undefined;
        attempt?.settle(exit);
      }),
    };
    child.on('message', (message: FromHost) => {
      if (message.type !== 'exited' || host.attempt?.id !== message.id) return;
      const attempt = host.attempt;
      host.attempt = undefined;
      if (message.code === 1 || message.code === 2) retire(host);
      attempt.settle({ code: message.code, signal: null });
    });
    hosts.add(host);
    started.push(host);
    return host;
  }

  function retire(host: Host): void {
    hosts.delete(host);
    if (host.child.connected) host.child.disconnect();
  }

  const send = (host: Host, message: ToHost) => {
    if (host.child.connected) host.child.send(message);
  };

  return {
    detachOnSignal: false,
    parallelFromStart: false,
    start(r) {
      const host = [...hosts].find((h) => !h.attempt && h.child.connected) ?? startHost(dirname(r.logFile));
      const id = ++attempts;
      const exited = new Promise<TrialExit>((settle) => {
        host.attempt = { id, settle };
      });
      send(host, {
        type: 'run',
        id,
        args: [...r.args, '--cache', o.cacheDir, '--quiet'],
        logFile: r.logFile,
      });
      const watcher = new TrialWatcher(join(r.dir, RUN_FILES.events), r.onEvent);
      return {
        pid: host.child.pid ?? -1,
        exited: exited.then((exit) => {
          watcher.stop();
          return exit;
        }),
        kill: (signal) => {
          if (host.attempt?.id !== id) return;
          if (signal === 'SIGKILL') host.child.kill('SIGKILL');
          else send(host, { type: 'stop', id, signal });
        },
      };
    },
    async close() {
      for (const host of [...hosts]) if (!host.attempt) retire(host);
      await Promise.all(started.map((h) => h.gone));
    },
  };
}
