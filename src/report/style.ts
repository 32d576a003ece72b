/**
 * The report's style sheet, inline in the page (the CSP allows inline styles and nothing else).
 */
export const STYLE = `
:root { color-scheme: light; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #fafafa; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 16px; }
h1 { margin: 0 0 2px; font-size: 22px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.muted { color: var(--muted); font-weight: normal; }
section.run, #curves, #runs { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 16px; margin: 16px 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.status-failed { color: #b2182b; } .status-interrupted, .status-running { color: #b26b00; }
.chart-box { margin: 8px 0 16px; }
.chart-box figcaption { font-weight: 600; margin-bottom: 4px; }
svg { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .grid line { stroke: #e6e6e6; } svg .grid text { fill: #555; } svg .grid .frame { stroke: #ccc; }
svg .mark text { font-size: 11px; }
svg .axis-label { fill: #333; font-size: 12px; }
svg .empty { fill: #999; font-size: 14px; }
.legend { list-style: none; padding: 0; margin: 4px 0 0 60px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.confusion { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.confusion figure { margin: 0; max-width: 420px; }
.confusion figure.wide { max-width: none; }
.confusion figcaption { color: var(--muted); margin-bottom: 4px; }
.heatmap text { font-size: 11px; }
.templates, .digits { display: flex; flex-wrap: wrap; gap: 10px; }
figure.template, figure.digit { margin: 0; text-align: center; }
img { image-rendering: pixelated; image-rendering: crisp-edges; }
figure.template img { border: 1px solid var(--line); display: block; }
figure.digit img, .no-image { border: 1px solid var(--line); display: block; width: 56px; height: 56px; }
.no-image { line-height: 56px; color: #bbb; }
figure.digit figcaption { font-size: 12px; }
.true { color: #1a7f37; font-weight: 600; } .predicted { color: #b2182b; font-weight: 600; }
.colour-bar { display: flex; align-items: center; gap: 8px; margin-top: 10px; color: var(--muted); }
.colour-bar img { border: 1px solid var(--line); }
.notes { color: #8a5a00; }
table.diff td, table.diff th { text-align: left; }
table.diff td:first-child code { color: #444; }
details { margin: 6px 0; }
details > summary { cursor: pointer; color: #333; }
.live { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #eee; color: #555; margin-left: 8px; vertical-align: middle; }
.live[data-state="live"] { background: #e6f4ea; color: #1a7f37; }
.live[data-state="reconnecting"] { background: #fff4e5; color: #8a5a00; }
pre.config { background: #f6f8fa; border: 1px solid #eee; padding: 10px; overflow: auto; font-size: 12px; }
`;
