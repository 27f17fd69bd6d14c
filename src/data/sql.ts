/**
 * SQL builders shared by prepare and the encoding of new rows (encode.ts, and through it `score`):
 * the raw feature columns of a row (featureSelect), their encoding into ids and standardised dense
 * values (encodeSelect), and exact literals (dbl, lit). Every value they put into SQL is a number
 * printed by JavaScript or a string through quoteStr.
 */
import { quoteStr, type DenseDef, type FieldDef } from "./spec.ts";
import type { ManifestDense, ManifestField } from "./manifest.ts";

export const NUMERIC_TYPE = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$/;

/** DuckDB types of points in time (a time-fraction split's column may also be a number). */
export const TIME_TYPE = /^(DATE|TIMESTAMP|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|TIMESTAMP WITH TIME ZONE)$/;

export function lit(v: number | string): string {
  return typeof v === "number" ? String(v) : quoteStr(v);
}

/** A double as an exact SQL literal (a string cast: decimal literals could round differently). */
export function dbl(x: number): string {
  return `'${String(x)}'::DOUBLE`;
}

/**
 * The raw feature columns of the `raw` table, shared by prepare and the encoding of new rows
 * (encode.ts): f_<i> per field (a numeric field's value as DOUBLE; a multi-valued field's list of
 * items: the text split on the separator, each trimmed, empty ones dropped, NULL for a NULL value;
 * otherwise the value, cast with TRY_CAST to `valueTypes[i]` when given) and x_<j> per dense input
 * (DOUBLE). `sql` of every field must be set (plain columns, or compiled expressions).
 */
export function featureSelect(fields: readonly FieldDef[], denses: readonly DenseDef[], valueTypes?: readonly (string | undefined)[]): string[] {
  const sel: string[] = [];
  fields.forEach((f, i) => {
    if (f.kind === "numeric") sel.push(`(${f.sql})::DOUBLE AS f_${i}`);
    else if (f.multi) {
      // items: split on the separator, trimmed, empty ones dropped (a NULL value gives NULL: the single id 0)
      sel.push(`list_filter(list_transform(string_split(CAST(${f.sql} AS VARCHAR), ${quoteStr(f.multi.separator)}), lambda x: trim(x)), lambda x: x <> '') AS f_${i}`);
    } else {
      const t = valueTypes?.[i];
      sel.push(t === undefined ? `${f.sql} AS f_${i}` : `TRY_CAST(${f.sql} AS ${t}) AS f_${i}`);
    }
  });
  denses.forEach((d, j) => sel.push(`(${d.sql})::DOUBLE AS x_${j}`));
  return sel;
}

/**
 * The encoding of the `raw` table's features (see featureSelect), shared by prepare and the
 * encoding of new rows (encode.ts): table `voc_<i>` (v, id) must hold the vocabulary of every
 * categorical field i. Returns the select items (c_<i>, or c_<i>_<k> for the k-th item of a
 * multi-valued field, and d_<j>) over `raw r` with the joins they need (all plain joins, so DuckDB
 * can spill them to disk: memory stays bounded whatever the number of rows).
 *
 * - categorical: the vocabulary's id of the value, 0 for a NULL or unknown value;
 * - multi-valued: the ids of the first maxLen items in order (unknown items: 0), then -1 padding;
 *   a NULL or empty list is the single id 0;
 * - numeric: 0 for NULL/NaN; point mass j (1-based) -> j; else k + 1 + #{boundaries <= x};
 * - dense: (f(x) - mean) / std (f = ln(1 + x) with log1p), 0 for NULL, NaN or ±Inf.
 */
export function encodeSelect(fields: readonly FieldDef[], mfields: readonly ManifestField[], mdense: readonly ManifestDense[]): { sel: string[]; join: string[] } {
  const sel: string[] = [];
  const joins: string[] = [];
  for (const [i, f] of fields.entries()) {
    const mf = mfields[i]!;
    if (f.kind === "categorical" && f.multi) {
      const L = mf.multi?.maxLen ?? f.multi.maxLen;
      // item k (1-based) of the row's first L items: its id (unknown: 0); past the end: -1 padding, and a NULL or
      // empty list is the single id 0. One join per position (hash joins spill to disk; a list aggregate would not).
      for (let k = 0; k < L; k++) {
        joins.push(`LEFT JOIN voc_${i} m${i}_${k} ON r.f_${i}[${k + 1}] = m${i}_${k}.v`);
        sel.push(`(CASE WHEN len(r.f_${i}) > ${k} THEN COALESCE(m${i}_${k}.id, 0) ELSE ${k === 0 ? 0 : -1} END)::INTEGER AS c_${i}_${k}`);
      }
    } else if (f.kind === "categorical") {
      sel.push(`COALESCE(v${i}.id, 0)::INTEGER AS c_${i}`);
      joins.push(`LEFT JOIN voc_${i} v${i} ON r.f_${i} = v${i}.v`);
    } else {
      const masses = mf.pointMasses ?? [];
      const bounds = mf.boundaries ?? [];
      const whenMass = masses.map((x, j) => `WHEN r.f_${i} = ${dbl(x)} THEN ${j + 1}`).join(" ");
      const k = masses.length;
      const cases = bounds.map((x, j) => `WHEN r.f_${i} < ${dbl(x)} THEN ${k + j + 1}`).join(" ");
      sel.push(`(CASE WHEN r.f_${i} IS NULL OR isnan(r.f_${i}) THEN 0 ${whenMass} ${cases} ELSE ${k + bounds.length + 1} END)::INTEGER AS c_${i}`);
    }
  }
  mdense.forEach((d, j) => {
    const x = `x_${j}`;
    const fr = d.log1p ? `ln(1 + r.${x})` : `r.${x}`;
    sel.push(`(CASE WHEN r.${x} IS NULL OR NOT isfinite(r.${x}) THEN 0 ELSE (${fr} - ${dbl(d.mean)}) / ${dbl(d.std)} END)::FLOAT AS d_${j}`);
  });
  return { sel, join: joins };
}
