/** Bad input to the data layer: a missing file or column, a wrong type, bad values, an empty split... */
export class DataError extends Error {
  /** The file the problem was found in, when it applies. */
  readonly file: string | undefined;
  /** The column the problem was found in, when it applies. */
  readonly column: string | undefined;
  /** Number of rows affected, when it applies. */
  readonly rows: number | undefined;
  /** The 1-based line of `file` the problem was found on, when it applies. */
  readonly line: number | undefined;

  constructor(message: string, where: { file?: string; column?: string; rows?: number; line?: number } = {}) {
    super(message);
    this.name = "DataError";
    this.file = where.file;
    this.column = where.column;
    this.rows = where.rows;
    this.line = where.line;
  }
}
