/**
 * Sandboxed spec expressions (`expr` of categorical / numeric fields and of `sql` tasks).
 *
 * An expression is never spliced into SQL as written. It is parsed by DuckDB's own parser
 * (`json_serialize_sql('SELECT <expr>\nFROM t')`, the text passed as a bound parameter), the parse
 * tree must be exactly one SELECT with one select-list item over the plain table `t`, and the
 * tree is walked against an allow-list: column references naming existing source columns,
 * constants, comparison / logical / arithmetic / string operators, IS [NOT] NULL, [NOT] IN (list),
 * BETWEEN, CASE, CAST / TRY_CAST to built-in scalar types, COALESCE, and calls of the scalar
 * functions in `ALLOWED_FUNCTIONS`. Anything else (statements, subqueries, table functions such as
 * read_text / read_csv / glob, aggregates, window functions, lambdas, `*`, parameters, COLLATE,
 * unknown columns or functions) is rejected with a DataError naming the spec key.
 *
 * The SQL that runs is re-emitted from the checked tree by `emit` (identifiers through quoteIdent,
 * strings through quoteStr, numbers from their exact decimal text), so comments, trailing text or
 * anything the parser dropped cannot reach the query.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { DataError } from "./errors.ts";
import { quoteIdent, quoteStr } from "./spec.ts";

/** Scalar functions an expression may call (lower case; deterministic, no file, network, setting or environment access). */
export const ALLOWED_FUNCTIONS: ReadonlySet<string> = new Set([
  // conditional / comparison
  "nullif", "greatest", "least", "hash",
  // string
  "lower", "upper", "lcase", "ucase", "length", "len", "strlen", "char_length", "character_length", "bit_length", "octet_length",
  "substr", "substring", "left", "right", "trim", "ltrim", "rtrim", "concat", "concat_ws", "replace", "translate", "contains",
  "starts_with", "ends_with", "prefix", "suffix", "strpos", "instr", "position", "lpad", "rpad", "reverse", "split_part",
  "regexp_matches", "regexp_replace", "regexp_extract", "regexp_full_match", "like_escape", "not_like_escape", "ilike_escape",
  "not_ilike_escape", "ascii", "chr", "md5", "levenshtein", "damerau_levenshtein", "hamming", "jaccard", "jaro_similarity",
  "jaro_winkler_similarity", "format", "printf", "strip_accents", "nfc_normalize", "to_base",
  // math
  "abs", "sign", "ceil", "ceiling", "floor", "round", "round_even", "roundbankers", "even", "trunc", "sqrt", "cbrt", "exp", "ln", "log",
  "log2", "log10", "pow", "power", "mod", "fmod", "isnan", "isinf", "isfinite", "signbit", "sin", "cos", "tan", "asin", "acos", "atan",
  "atan2", "sinh", "cosh", "tanh", "degrees", "radians", "pi", "factorial", "gcd", "lcm", "bit_count", "xor", "divide", "add",
  "subtract", "multiply",
  // date / time
  "year", "month", "day", "hour", "minute", "second", "millisecond", "microsecond", "nanosecond", "dayofweek", "dayofmonth",
  "dayofyear", "week", "weekofyear", "weekday", "isodow", "isoyear", "quarter", "yearweek", "century", "decade", "millennium", "era",
  "epoch", "epoch_ms", "epoch_us", "epoch_ns", "date_part", "datepart", "date_trunc", "datetrunc", "date_diff", "datediff", "date_sub",
  "datesub", "date_add", "strftime", "strptime", "try_strptime", "make_date", "make_time", "make_timestamp", "to_timestamp",
  "last_day", "dayname", "monthname", "time_bucket", "to_years", "to_months", "to_weeks", "to_days", "to_hours", "to_minutes",
  "to_seconds", "to_milliseconds", "to_microseconds",
]);

/** Operators (DuckDB parses them as functions with is_operator) and how they are written back. */
const BINARY_OPS: Record<string, string> = {
  "+": "+", "-": "-", "*": "*", "/": "/", "//": "//", "%": "%", "**": "**", "^": "^", "||": "||", "&": "&", "|": "|", "<<": "<<", ">>": ">>",
  "~~": "LIKE", "!~~": "NOT LIKE", "~~*": "ILIKE", "!~~*": "NOT ILIKE", "~~~": "GLOB",
};
const UNARY_OPS: Record<string, string> = { "-": "-", "+": "+", "~": "~" };

const COMPARISONS: Record<string, string> = {
  COMPARE_EQUAL: "=",
  COMPARE_NOTEQUAL: "<>",
  COMPARE_LESSTHAN: "<",
  COMPARE_GREATERTHAN: ">",
  COMPARE_LESSTHANOREQUALTO: "<=",
  COMPARE_GREATERTHANOREQUALTO: ">=",
  COMPARE_DISTINCT_FROM: "IS DISTINCT FROM",
  COMPARE_NOT_DISTINCT_FROM: "IS NOT DISTINCT FROM",
};

/** Types CAST may target (parse-tree type ids; DECIMAL additionally carries width and scale). */
const CAST_TYPES = new Set([
  "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
  "FLOAT", "DOUBLE", "VARCHAR", "DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS",
  "INTERVAL",
]);

const AGGREGATES = new Set([
  "count", "count_star", "sum", "avg", "mean", "min", "max", "median", "mode", "quantile", "quantile_cont", "quantile_disc", "stddev",
  "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "first", "last", "any_value", "arg_min", "arg_max", "argmin", "argmax",
  "string_agg", "group_concat", "list", "array_agg", "bool_and", "bool_or", "approx_count_distinct", "approx_quantile", "histogram",
  "product", "entropy", "kurtosis", "skewness", "corr", "covar_pop", "covar_samp", "fsum", "sumkahan", "bit_and", "bit_or", "bit_xor",
]);

// ---- exact JSON ------------------------------------------------------------------------------

/** A JSON number kept as its exact decimal text (parse-tree integers can exceed 2^53). */
class JNum {
  constructor(readonly text: string) {}
}
type J = null | boolean | string | JNum | J[] | { [k: string]: J };

function parseJsonExact(s: string): J {
  let i = 0;
  const ws = (): void => {
    while (i < s.length && " \t\n\r".includes(s[i] as string)) i++;
  };
  const val = (): J => {
    ws();
    const c = s[i];
    if (c === "{") {
      i++;
      const o: { [k: string]: J } = {};
      ws();
      if (s[i] === "}") return i++, o;
      for (;;) {
        ws();
        const k = val();
        if (typeof k !== "string") throw new Error("bad JSON key");
        ws();
        if (s[i++] !== ":") throw new Error("bad JSON");
        o[k] = val();
        ws();
        const d = s[i++];
        if (d === "}") return o;
        if (d !== ",") throw new Error("bad JSON");
      }
    }
    if (c === "[") {
      i++;
      const a: J[] = [];
      ws();
      if (s[i] === "]") return i++, a;
      for (;;) {
        a.push(val());
        ws();
        const d = s[i++];
        if (d === "]") return a;
        if (d !== ",") throw new Error("bad JSON");
      }
    }
    if (c === '"') {
      const start = i++;
      while (i < s.length && s[i] !== '"') i += s[i] === "\\" ? 2 : 1;
      i++;
      return JSON.parse(s.slice(start, i)) as string;
    }
    const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(s.slice(i, i + 400));
    if (!m) throw new Error(`bad JSON at ${i}`);
    i += m[0].length;
    if (m[0] === "true") return true;
    if (m[0] === "false") return false;
    if (m[0] === "null") return null;
    return new JNum(m[0]);
  };
  const v = val();
  ws();
  if (i !== s.length) throw new Error("trailing JSON");
  return v;
}

type Node = { [k: string]: J };

function obj(x: J | undefined): Node | null {
  return x !== null && x !== undefined && typeof x === "object" && !Array.isArray(x) && !(x instanceof JNum) ? x : null;
}
function arr(x: J | undefined): J[] {
  return Array.isArray(x) ? x : [];
}
function txt(x: J | undefined): string {
  return typeof x === "string" ? x : "";
}

function bigOf(x: J | undefined): bigint | null {
  if (x instanceof JNum && /^-?\d+$/.test(x.text)) return BigInt(x.text);
  const o = obj(x);
  if (o && o.upper instanceof JNum && o.lower instanceof JNum) return BigInt(o.upper.text) * 2n ** 64n + BigInt(o.lower.text);
  return null;
}

// ---- compile ---------------------------------------------------------------------------------

export interface CompiledExpr {
  /** SQL re-emitted from the checked parse tree. */
  sql: string;
  /** Source columns the expression reads. */
  columns: string[];
}

/**
 * Parses `text` with DuckDB, checks it against the allow-list and re-emits it.
 * `columns` are the source columns (log + joined); `key` names the spec key in errors.
 */
export async function compileExpr(conn: DuckDBConnection, text: string, key: string, columns: readonly string[]): Promise<CompiledExpr> {
  const bad = (msg: string): never => {
    throw new DataError(`invalid dataset spec: ${key} ${msg} (expression: ${JSON.stringify(text)})`);
  };
  if (text.includes("\0")) bad("contains a NUL character");
  let json: string;
  try {
    const r = await conn.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR) AS j", [`SELECT ${text}\nFROM t`]);
    json = String((r.getRowObjectsJS()[0] as { j: unknown }).j);
  } catch (e) {
    return bad(`could not be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const root = obj(parseJsonExact(json));
  if (!root) return bad("could not be parsed");
  if (root.error === true) {
    const m = txt(root.error_message);
    const hint = /Only SELECT/i.test(m) || text.includes(";") ? " (an expression is one scalar SQL expression: no statements, no ';')" : "";
    return bad(`is not a valid SQL expression: ${m}${hint}`);
  }
  const stmts = arr(root.statements);
  if (stmts.length !== 1) return bad(`must be one scalar expression (it parses as ${stmts.length} statements; ';' is not allowed)`);
  const sel = obj(obj(stmts[0])?.node);
  const from = obj(sel?.from_table);
  const isEmpty = (x: J | undefined): boolean => x === null || x === undefined || (Array.isArray(x) && x.length === 0);
  if (
    !sel ||
    sel.type !== "SELECT_NODE" ||
    arr(sel.select_list).length !== 1 ||
    !from ||
    from.type !== "BASE_TABLE" ||
    from.table_name !== "t" ||
    txt(from.schema_name) !== "" ||
    txt(from.catalog_name) !== "" ||
    txt(from.alias) !== "" ||
    !isEmpty(from.sample) ||
    !isEmpty(from.at_clause) ||
    !isEmpty(from.column_name_alias) ||
    !isEmpty(sel.modifiers) ||
    arr(obj(sel.cte_map)?.map).length !== 0 ||
    !isEmpty(sel.where_clause) ||
    !isEmpty(sel.group_expressions) ||
    !isEmpty(sel.group_sets) ||
    !isEmpty(sel.having) ||
    !isEmpty(sel.sample) ||
    !isEmpty(sel.qualify) ||
    sel.aggregate_handling !== "STANDARD_HANDLING"
  ) {
    return bad("must be one scalar expression (no FROM, WHERE, GROUP BY, ORDER BY, LIMIT, set operations or several select items)");
  }
  const exact = new Set(columns);
  const lower = new Map<string, string[]>();
  for (const c of columns) lower.set(c.toLowerCase(), [...(lower.get(c.toLowerCase()) ?? []), c]);
  const used = new Set<string>();

  const column = (n: Node): string => {
    const names = arr(n.column_names).map(txt);
    if (names.length !== 1) return bad(`may only name columns directly (got ${names.join(".")})`);
    const name = names[0] as string;
    let col: string | undefined = exact.has(name) ? name : undefined;
    if (col === undefined) {
      const cands = lower.get(name.toLowerCase()) ?? [];
      if (cands.length > 1) return bad(`names column "${name}", which matches several columns (${cands.join(", ")}); quote it exactly`);
      col = cands[0];
    }
    if (col === undefined) return bad(`names column "${name}", which is not a column of the source (columns: ${columns.join(", ")})`);
    used.add(col);
    return quoteIdent(col);
  };

  const typeSql = (t: Node | null): string => {
    const id = txt(t?.id);
    const info = obj(t?.type_info);
    if (id === "DECIMAL" && info) {
      const w = bigOf(info.width);
      const s = bigOf(info.scale);
      if (w === null || s === null) return bad("has a malformed DECIMAL type");
      return `DECIMAL(${w}, ${s})`;
    }
    if (!CAST_TYPES.has(id) || info !== null) return bad(`casts to a type that is not allowed (${id === "UNBOUND" ? txt(info?.name) : id}; allowed: ${[...CAST_TYPES].join(", ")}, DECIMAL(w, s))`);
    return id;
  };

  const constant = (n: Node): string => {
    const v = obj(n.value);
    const t = obj(v?.type);
    const id = txt(t?.id);
    if (!v) return bad("has a malformed constant");
    if (v.is_null === true) return id === "NULL" ? "NULL" : `CAST(NULL AS ${typeSql(t)})`;
    const paren = (s: string): string => (s.startsWith("-") ? `(${s})` : s);
    switch (id) {
      case "VARCHAR":
        if (typeof v.value !== "string") return bad("has a malformed string constant");
        return quoteStr(v.value);
      case "BOOLEAN":
        return v.value === true ? "TRUE" : "FALSE";
      case "INTEGER":
      case "BIGINT":
      case "HUGEINT": {
        const b = bigOf(v.value);
        if (b === null) return bad("has a malformed integer constant");
        return paren(b.toString());
      }
      case "DECIMAL": {
        const b = bigOf(v.value);
        const scale = Number(bigOf(obj(t?.type_info)?.scale ?? null) ?? -1n);
        if (b === null || !(scale >= 0)) return bad("has a malformed decimal constant");
        const neg = b < 0n;
        const digits = (neg ? -b : b).toString().padStart(scale + 1, "0");
        const s = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
        return paren(`${neg ? "-" : ""}${s}`);
      }
      case "DOUBLE":
      case "FLOAT": {
        if (!(v.value instanceof JNum)) return bad("has a constant that is not a finite number");
        const s = /[eE]/.test(v.value.text) ? v.value.text : `${v.value.text}e0`;
        return id === "DOUBLE" ? paren(s) : `CAST(${paren(s)} AS FLOAT)`;
      }
      default:
        return bad(`has a constant of type ${id}, which is not supported`);
    }
  };

  const kids = (n: Node, min: number, max = Infinity): Node[] => {
    const c = arr(n.children).map(obj);
    if (c.length < min || c.length > max || c.some((x) => x === null)) return bad(`has a malformed ${txt(n.class)} node`);
    return c as Node[];
  };

  const fn = (n: Node): string => {
    const name = txt(n.function_name).toLowerCase();
    const schema = txt(n.schema);
    if ((schema !== "" && schema !== "main") || txt(n.catalog) !== "") return bad(`calls ${schema}.${name}: qualified function names are not allowed`);
    if (!isEmpty(n.filter) || arr(obj(n.order_bys)?.orders).length !== 0 || n.distinct === true || n.export_state === true) {
      return bad(`calls ${name} with FILTER / ORDER BY / DISTINCT, which only aggregates take; aggregates are not allowed`);
    }
    const args = kids(n, 0);
    if (n.is_operator === true) {
      if (args.length === 1 && UNARY_OPS[name] !== undefined) return `(${UNARY_OPS[name]} ${walk(args[0] as Node)})`;
      if (args.length === 2 && BINARY_OPS[name] !== undefined) return `(${walk(args[0] as Node)} ${BINARY_OPS[name]} ${walk(args[1] as Node)})`;
      return bad(`uses the operator ${name}, which is not allowed`);
    }
    if (AGGREGATES.has(name)) return bad(`calls the aggregate function ${name === "count_star" ? "count(*)" : name}; aggregates are not allowed (an expression sees one row)`);
    if (!ALLOWED_FUNCTIONS.has(name)) return bad(`calls the function ${name}, which is not on the allow-list of scalar functions (see data/README.md: string, math, date and comparison functions)`);
    return `${name}(${args.map(walk).join(", ")})`;
  };

  const walk = (n: Node): string => {
    const cls = txt(n.class);
    switch (cls) {
      case "COLUMN_REF":
        return column(n);
      case "CONSTANT":
        return constant(n);
      case "COMPARISON": {
        const op = COMPARISONS[txt(n.type)];
        const l = obj(n.left);
        const r = obj(n.right);
        if (!op || !l || !r) return bad(`uses the comparison ${txt(n.type)}, which is not allowed`);
        return `(${walk(l)} ${op} ${walk(r)})`;
      }
      case "CONJUNCTION": {
        const op = n.type === "CONJUNCTION_AND" ? " AND " : n.type === "CONJUNCTION_OR" ? " OR " : null;
        if (!op) return bad(`uses ${txt(n.type)}, which is not allowed`);
        return `(${kids(n, 2).map(walk).join(op)})`;
      }
      case "OPERATOR": {
        switch (txt(n.type)) {
          case "OPERATOR_NOT":
            return `(NOT ${walk(kids(n, 1, 1)[0] as Node)})`;
          case "OPERATOR_IS_NULL":
            return `(${walk(kids(n, 1, 1)[0] as Node)} IS NULL)`;
          case "OPERATOR_IS_NOT_NULL":
            return `(${walk(kids(n, 1, 1)[0] as Node)} IS NOT NULL)`;
          case "COMPARE_IN":
          case "COMPARE_NOT_IN": {
            const [x, ...list] = kids(n, 2);
            return `(${walk(x as Node)} ${n.type === "COMPARE_IN" ? "IN" : "NOT IN"} (${list.map(walk).join(", ")}))`;
          }
          case "OPERATOR_COALESCE":
            return `COALESCE(${kids(n, 1).map(walk).join(", ")})`;
          default:
            return bad(`uses ${txt(n.type)}, which is not allowed`);
        }
      }
      case "BETWEEN": {
        const [x, lo, hi] = [obj(n.input), obj(n.lower), obj(n.upper)];
        if (!x || !lo || !hi) return bad("has a malformed BETWEEN");
        return `(${walk(x)} BETWEEN ${walk(lo)} AND ${walk(hi)})`;
      }
      case "CASE": {
        const checks = arr(n.case_checks).map(obj);
        if (checks.length === 0 || checks.some((c) => !c || !obj(c.when_expr) || !obj(c.then_expr))) return bad("has a malformed CASE");
        const els = obj(n.else_expr);
        const whens = (checks as Node[]).map((c) => `WHEN ${walk(obj(c.when_expr) as Node)} THEN ${walk(obj(c.then_expr) as Node)}`);
        return `(CASE ${whens.join(" ")}${els ? ` ELSE ${walk(els)}` : ""} END)`;
      }
      case "CAST": {
        const c = obj(n.child);
        if (!c) return bad("has a malformed CAST");
        return `${n.try_cast === true ? "TRY_CAST" : "CAST"}(${walk(c)} AS ${typeSql(obj(n.cast_type))})`;
      }
      case "FUNCTION":
        return fn(n);
      case "SUBQUERY":
        return bad("contains a subquery; only scalar expressions over the row's columns are allowed");
      case "WINDOW":
        return bad("uses a window function (OVER ...), which is not allowed");
      case "STAR":
        return bad("uses * or COLUMNS(...), which is not allowed");
      case "LAMBDA":
        return bad("uses a lambda, which is not allowed");
      case "PARAMETER":
        return bad("uses a parameter ($n / ?), which is not allowed");
      case "POSITIONAL_REFERENCE":
        return bad("uses a positional reference (#n), which is not allowed");
      default:
        return bad(`uses ${cls || "an unknown construct"} (${txt(n.type)}), which is not allowed`);
    }
  };

  const sql = walk(obj(arr(sel.select_list)[0]) as Node);
  return { sql, columns: [...used] };
}
