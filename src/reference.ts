/**
 * The settings reference, generated from the stages' own schemas so the docs cannot drift from
 * the code: `rxtrain stages` prints it, and the README's reference section is this output.
 */
import { z } from 'zod';
import type { StageDefinition } from './pipeline/stage.js';
import { RxtrainError } from './util/errors.js';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  description?: string;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  additionalProperties?: JsonSchema | boolean;
  const?: unknown;
}

export interface SettingRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

export function settingRows(definition: StageDefinition): SettingRow[] {
  const schema = definition.settings as unknown;
  if (!schema || typeof schema !== 'object' || !('_zod' in schema)) return [];
  const json = z.toJSONSchema(schema as z.ZodType, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rows(json, '');
}

function rows(json: JsonSchema, prefix: string): SettingRow[] {
  const out: SettingRow[] = [];
  for (const [key, prop] of Object.entries(json.properties ?? {})) {
    out.push({
      key: prefix + key,
      type: typeName(prop),
      default:
        prop.default === undefined
          ? json.required?.includes(key)
            ? '(required)'
            : '—'
          : JSON.stringify(prop.default),
      description: prop.description ?? '',
    });
    const nested = prop.properties ? prop : prop.anyOf?.find((p) => p.properties);
    if (nested?.properties && !prop.oneOf) out.push(...rows(nested, `${prefix}${key}.`));
  }
  return out;
}

function typeName(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return [...new Set(alts.map(typeName))].join(' | ');
  if (s.type === 'array') return `${s.items ? typeName(s.items) : 'any'}[]`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') {
    return `map of ${typeName(s.additionalProperties)}`;
  }
  const t = Array.isArray(s.type) ? s.type.join(' | ') : (s.type ?? 'any');
  return t;
}

export function stageReference(
  definitions: readonly StageDefinition[],
  options: { type?: string; markdown?: boolean } = {},
): string {
  const chosen = options.type ? definitions.filter((d) => d.type === options.type) : definitions;
  if (chosen.length === 0) {
    throw new RxtrainError(
      'E_USAGE',
      `no stage type "${options.type}" (known: ${definitions.map((d) => d.type).join(', ')})`,
    );
  }
  let text = '';
  for (const d of chosen) {
    const table = settingRows(d);
    if (options.markdown) {
      text += `### \`${d.type}\`${d.state ? ' (stateful)' : ''}\n\n${d.summary}.\n\n`;
      if (table.length) {
        text += '| setting | type | default | meaning |\n| --- | --- | --- | --- |\n';
        for (const r of table)
          text += `| \`${r.key}\` | ${r.type.replace(/\|/g, '\\|')} | \`${r.default}\` | ${r.description} |\n`;
      }
      text += '\n';
    } else {
      text += `${d.type}${d.state ? ' (stateful)' : ''} — ${d.summary}\n`;
      for (const r of table)
        text += `  ${r.key.padEnd(22)} ${r.type.padEnd(30)} default ${r.default.padEnd(14)} ${r.description}\n`;
      text += '\n';
    }
  }
  return text;
}
