/**
 * Escaping for text and attribute values in HTML. Everything the report shows that came from a
 * run directory (names, split labels, config text, error messages) goes through this: a run
 * directory is data, and data must never become markup.
 */
const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}
