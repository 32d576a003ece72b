/**
 * What fetch's local and remote sides share: the checksums configured for a file, and a file as a
 * flow of `bytes` chunks.
 */
import type { ExpectedDigests } from '../../download/downloadCache.js';
import { concatFlows, type Flow, fromArray, mapFlow } from '../../flow/index.js';
import type { FileChunk } from '../../pipeline/messages.js';
import type { FetchSettings } from '../fetch.js';

/** The checksums configured for one file (`name` undefined: the single file). */
export function expectedFor(settings: FetchSettings, name: string | undefined): ExpectedDigests {
  const pick = (value: FetchSettings['sha256']) =>
    typeof value === 'string' ? value : value && name !== undefined ? value[name] : undefined;
  return { sha256: pick(settings.sha256), md5: pick(settings.md5) };
}

export function hasChecksum(expected: ExpectedDigests): boolean {
  return !!(expected.sha256 || expected.md5);
}

/** One file as `bytes` chunks read under demand, ending with an empty `last` chunk. */
export function fileFlow(
  file: string,
  source: string,
  size: number | undefined,
  bytes: Flow<Uint8Array>,
  onOffset?: (offset: number) => void,
): Flow<FileChunk> {
  return (requests) => {
    let offset = 0;
    const body = mapFlow(bytes, (bytes): FileChunk => {
      const chunk: FileChunk = { kind: 'bytes', file, source, offset, bytes, last: false, size };
      offset += bytes.byteLength;
      onOffset?.(offset);
      return chunk;
    });
    const end: Flow<FileChunk> = (r) =>
      fromArray<FileChunk>([
        { kind: 'bytes', file, source, offset, bytes: new Uint8Array(0), last: true, size },
      ])(r);
    return concatFlows([body, end])(requests);
  };
}
