/**
 * The README's method and architecture tables, generated from the registries
 * (src/balance/registry.ts, src/model/registry.ts) and written between marker comments by
 * `npm run docs:tables` (scripts/gen-readme-tables.ts). test/report/readme-tables.test.ts fails
 * when README.md is out of date, so adding a method or an architecture (a file + its registry
 * line) shows up in the README by running the script, never by editing the table by hand.
 */
import { METHODS } from "../balance/registry.ts";
import { ARCHITECTURES } from "../model/registry.ts";
import { COMMON_DEFAULTS } from "../model/common.ts";

export const README_PATH = "README.md";

/** The generated sections, in README order: id -> renderer. */
export const README_TABLES: Readonly<Record<string, () => string>> = {
  methods: renderMethodTable,
  architectures: renderArchitectureTable,
};

const begin = (id: string): string => `<!-- generated:${id} by \`npm run docs:tables\` from the registry; do not edit by hand -->`;
const end = (id: string): string => `<!-- /generated:${id} -->`;

/** A table cell: pipes escaped, whitespace collapsed. */
function cell(s: string): string {
  return s.replace(/\s+/g, " ").replace(/\|/g, "\\|").trim();
}

function value(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(value).join(",")}]`;
  if (v === "") return '""';
  return String(v);
}

function options(defaults: Record<string, unknown>, skip: (k: string, v: unknown) => boolean = () => false): string {
  const parts = Object.entries(defaults)
    .filter(([k, v]) => !skip(k, v))
    .map(([k, v]) => `${k}=${value(v)}`);
  return parts.length ? cell(parts.join(", ")) : "–";
}

/** `--method` | label | kind | summary (paper, venue) | defaults | declared properties. */
export function renderMethodTable(): string {
  const rows = [...METHODS.values()].map(
    (e) =>
      `| \`${e.name}\` | ${cell(e.label)} | ${e.kind} | ${cell(e.summary)} | ${options(e.defaults as Record<string, unknown>)} | ${(e.properties ?? []).join(", ") || "–"} |`,
  );
  return [
    "| `--method` | label | kind | paper | defaults | declared properties |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    `${METHODS.size} methods. The properties are the guarantees each method declares (MethodProperty in \`src/balance/types.ts\`), each checked for every method by \`test/balance/properties.test.ts\`.`,
  ].join("\n");
}

/** `--model` | summary | its own options (defaults), then the options every architecture takes. */
export function renderArchitectureTable(): string {
  const common = COMMON_DEFAULTS as unknown as Record<string, unknown>;
  const rows = [...ARCHITECTURES.values()].map(
    (e) => `| \`${e.name}\` | ${cell(e.summary)} | ${options(e.defaults as Record<string, unknown>, (k, v) => k in common && value(v) === value(common[k]))} |`,
  );
  return [
    "| `--model` | structure | options (defaults; beyond the common ones) |",
    "|---|---|---|",
    ...rows,
    "",
    `Every architecture also takes the common options ${options(common)} (an architecture's own default, listed above, wins).`,
  ].join("\n");
}

/**
 * README text with every generated section replaced by what the registries give now. Throws,
 * naming the section, when a marker pair is missing or out of order.
 */
export function updateReadme(text: string): string {
  let out = text;
  for (const [id, render] of Object.entries(README_TABLES)) {
    const b = out.indexOf(begin(id));
    const e = out.indexOf(end(id));
    if (b < 0 || e < 0 || e < b) throw new Error(`${README_PATH}: the generated section "${id}" needs the marker lines ${begin(id)} and ${end(id)}, in that order`);
    out = `${out.slice(0, b + begin(id).length)}\n${render()}\n${out.slice(e)}`;
  }
  return out;
}

/** The marker-delimited block for a section (for inserting it into a README that lacks it). */
export function generatedBlock(id: string): string {
  const render = README_TABLES[id];
  if (!render) throw new Error(`unknown generated section "${id}"; sections: ${Object.keys(README_TABLES).join(", ")}`);
  return `${begin(id)}\n${render()}\n${end(id)}`;
}
