/**
 * `--queue redis://[user:password@]HOST[:PORT][/DB]`, checked before anything connects: a typo is a
 * usage error naming the text, not a connection that retries forever. `shown` is the URL with any
 * password masked, for messages and logs.
 */
import { z } from 'zod';
import { RxtrainError } from '../util/errors.js';

export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  shown: string;
}

const Port = z.coerce.number().int().min(1).max(65_535);
const Db = z.coerce.number().int().min(0).max(15);

export function parseRedisUrl(text: string): RedisTarget {
  const bad = (why: string) =>
    new RxtrainError('E_USAGE', `--queue ${JSON.stringify(text)}: ${why} (expected redis://HOST:PORT[/DB])`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad('not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw bad(`unsupported scheme ${url.protocol}`);
  if (!url.hostname) throw bad('no host');
  const port = Port.safeParse(url.port || '6379');
  if (!port.success) throw bad(`port ${url.port} out of range`);
  const dbText = url.pathname.replace(/^\//, '');
  const db = Db.safeParse(dbText || '0');
  if (!db.success) throw bad(`database "${dbText}" is not a number 0–15`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const shownUrl = new URL(url.href);
  if (shownUrl.password) shownUrl.password = '***';
  return {
    host,
    port: port.data,
    db: db.data,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    tls: url.protocol === 'rediss:',
    shown: shownUrl.href.replace(/\/$/, ''),
  };
}
