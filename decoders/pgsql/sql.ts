// Just enough SQL lexing to name a statement: its first keyword (db.operation.name) and, for
// simple single-table statements, the table (db.collection.name). Walks (ptr, end) over the
// query bytes; skips comments, string literals, dollar quotes and quoted identifiers.

// Token kinds.
const TK_END: i32 = 0;
const TK_WORD: i32 = 1;    // keyword or bare identifier
const TK_QIDENT: i32 = 2;  // "quoted identifier"
const TK_PUNCT: i32 = 3;   // one punctuation byte
const TK_OTHER: i32 = 4;   // literal, number, operator run

// Lexer cursor (module globals: one query is lexed at a time).
let lexEnd: usize = 0;
let lexPos: usize = 0;
let tokStart: usize = 0;
let tokEnd: usize = 0;
let tokKind: i32 = TK_END;

const opBuf: usize = memory.data(32);
export let opLen: i32 = 0;
export let opStart: usize = 0;   // where the keyword is in the text (opBuf holds it upper-cased)
export let collStart: usize = 0;
export let collLen: i32 = 0;

@inline function isSpace(c: u32): bool { return c == 32 || (c >= 9 && c <= 13); }
@inline function isIdentStart(c: u32): bool { return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c >= 128; }
@inline function isIdentChar(c: u32): bool { return isIdentStart(c) || (c >= 48 && c <= 57) || c == 36; }

function skipSpaceAndComments(): void {
  while (lexPos < lexEnd) {
    const c = <u32>load<u8>(lexPos);
    if (isSpace(c)) { lexPos++; continue; }
    if (c == 45 && lexPos + 1 < lexEnd && load<u8>(lexPos + 1) == 45) { // -- to end of line
      lexPos += 2;
      while (lexPos < lexEnd && load<u8>(lexPos) != 10) lexPos++;
      continue;
    }
    if (c == 47 && lexPos + 1 < lexEnd && load<u8>(lexPos + 1) == 42) { // /* nested */
      lexPos += 2;
      let depth = 1;
      while (lexPos < lexEnd && depth > 0) {
        const d = load<u8>(lexPos);
        if (d == 42 && lexPos + 1 < lexEnd && load<u8>(lexPos + 1) == 47) { depth--; lexPos += 2; continue; }
        if (d == 47 && lexPos + 1 < lexEnd && load<u8>(lexPos + 1) == 42) { depth++; lexPos += 2; continue; }
        lexPos++;
      }
      continue;
    }
    break;
  }
}

function skipQuoted(q: u8, backslash: bool): void {
  // lexPos is on the opening quote; a doubled quote is an escaped quote.
  lexPos++;
  while (lexPos < lexEnd) {
    const c = load<u8>(lexPos);
    if (backslash && c == 92) { lexPos += 2; continue; }
    lexPos++;
    if (c == q) {
      if (lexPos < lexEnd && load<u8>(lexPos) == q) { lexPos++; continue; }
      return;
    }
  }
  if (lexPos > lexEnd) lexPos = lexEnd;
}

function next(): i32 {
  skipSpaceAndComments();
  tokStart = lexPos;
  if (lexPos >= lexEnd) { tokEnd = lexPos; tokKind = TK_END; return TK_END; }
  const c = <u32>load<u8>(lexPos);
  if ((c == 69 || c == 101) && lexPos + 1 < lexEnd && load<u8>(lexPos + 1) == 39) { // E'...'
    lexPos++;
    skipQuoted(39, true);
    tokKind = TK_OTHER;
  } else if (isIdentStart(c)) {
    while (lexPos < lexEnd && isIdentChar(<u32>load<u8>(lexPos))) lexPos++;
    tokKind = TK_WORD;
  } else if (c == 34) {
    skipQuoted(34, false);
    tokKind = TK_QIDENT;
  } else if (c == 39) {
    skipQuoted(39, false);
    tokKind = TK_OTHER;
  } else if (c == 36) {
    // $n parameter or $tag$ … $tag$ dollar quote.
    let p = lexPos + 1;
    while (p < lexEnd && isIdentChar(<u32>load<u8>(p)) && load<u8>(p) != 36) p++;
    if (p < lexEnd && load<u8>(p) == 36) {
      const tagLen = p + 1 - lexPos;
      const tag = lexPos;
      lexPos = p + 1;
      let found = false;
      while (lexPos + tagLen <= lexEnd) {
        if (load<u8>(lexPos) == 36 && memory.compare(lexPos, tag, tagLen) == 0) { lexPos += tagLen; found = true; break; }
        lexPos++;
      }
      if (!found) lexPos = lexEnd;
    } else {
      lexPos = p;
    }
    tokKind = TK_OTHER;
  } else if (c >= 48 && c <= 57) {
    while (lexPos < lexEnd && (isIdentChar(<u32>load<u8>(lexPos)) || load<u8>(lexPos) == 46)) lexPos++;
    tokKind = TK_OTHER;
  } else if (c == 40 || c == 41 || c == 44 || c == 59 || c == 46) {
    lexPos++;
    tokKind = TK_PUNCT;
  } else {
    lexPos++;
    tokKind = TK_OTHER;
  }
  tokEnd = lexPos;
  return tokKind;
}

/** Case-insensitive compare of the current token with an upper-case ASCII keyword. */
function is(kw: string): bool {
  if (tokKind != TK_WORD) return false;
  const n = <i32>(tokEnd - tokStart);
  if (n != kw.length) return false;
  for (let i = 0; i < n; i++) {
    let c = <u32>load<u8>(tokStart + <usize>i);
    if (c >= 97 && c <= 122) c -= 32;
    if (c != <u32>kw.charCodeAt(i)) return false;
  }
  return true;
}

@inline function isPunct(ch: u32): bool {
  return tokKind == TK_PUNCT && <u32>load<u8>(tokStart) == ch;
}

// Parentheses open at the current token (nextInStatement).
let parenDepth = 0;

/** Moves to the next token that is not punctuation, counting parentheses in `parenDepth`;
 *  false at the end of the text or of the statement (';'). */
function nextInStatement(): bool {
  for (;;) {
    next();
    if (tokKind == TK_END) return false;
    if (tokKind != TK_PUNCT) return true;
    const c = <u32>load<u8>(tokStart);
    if (c == 40) parenDepth++;
    else if (c == 41) parenDepth--;
    else if (c == 59) return false;
  }
  return false;
}

/** First keyword, upper-cased, into opBuf/opLen (0 when the text does not start with a word). */
export function operationName(ptr: usize, len: i32): void {
  lexPos = ptr;
  lexEnd = ptr + <usize>len;
  opLen = 0;
  // A parenthesised statement "(SELECT …)" is named by its first keyword too.
  while (next() == TK_PUNCT && isPunct(40)) {}
  if (tokKind != TK_WORD) return;
  if (is("WITH")) {
    // A common table expression: the statement is named by the keyword after the CTE list.
    parenDepth = 0;
    for (;;) {
      if (!nextInStatement()) return;
      if (parenDepth == 0 && (is("SELECT") || is("INSERT") || is("UPDATE") || is("DELETE") || is("MERGE") || is("VALUES") || is("TABLE"))) break;
    }
  }
  const n = <i32>(tokEnd - tokStart);
  if (n > 32) return;
  upper(tokStart, n);
  if (!isCommand(opBuf, opLen)) { opLen = 0; return; }
  opStart = tokStart;
}

// The statements PostgreSQL knows (the SQL Commands reference). Anything else (a typo, garbage)
// gets no db.operation.name: span names stay low-cardinality whatever clients send.
const COMMANDS: string[] = [
  "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE", "WITH", "BEGIN", "START", "COMMIT",
  "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE", "EXECUTE", "DEALLOCATE", "DECLARE", "FETCH",
  "MOVE", "CLOSE", "CREATE", "ALTER", "DROP", "TRUNCATE", "COPY", "GRANT", "REVOKE", "SET", "RESET", "SHOW",
  "LISTEN", "UNLISTEN", "NOTIFY", "LOCK", "VACUUM", "ANALYZE", "ANALYSE", "EXPLAIN", "CLUSTER", "REINDEX",
  "REFRESH", "CHECKPOINT", "DISCARD", "DO", "CALL", "COMMENT", "LOAD", "IMPORT", "REASSIGN", "SECURITY",
  // the replication protocol's commands (a walsender connection: pg_recvlogical, pg_basebackup,
  // standbys, logical subscribers)
  "IDENTIFY_SYSTEM", "TIMELINE_HISTORY", "CREATE_REPLICATION_SLOT", "DROP_REPLICATION_SLOT",
  "ALTER_REPLICATION_SLOT", "READ_REPLICATION_SLOT", "START_REPLICATION", "BASE_BACKUP", "UPLOAD_MANIFEST",
];

function isCommand(p: usize, n: i32): bool {
  for (let k = 0; k < COMMANDS.length; k++) {
    const c = unchecked(COMMANDS[k]);
    if (c.length != n) continue;
    let same = true;
    for (let i = 0; i < n; i++) if (<i32>load<u8>(p + <usize>i) != c.charCodeAt(i)) { same = false; break; }
    if (same) return true;
  }
  return false;
}

/** Upper-cases a keyword of at most 32 bytes into opBuf/opLen. */
export function upper(p: usize, n: i32): void {
  if (n > 32) n = 32;
  for (let i = 0; i < n; i++) {
    let c = load<u8>(p + <usize>i);
    if (c >= 97 && c <= 122) c -= 32;
    store<u8>(opBuf + <usize>i, c);
  }
  opLen = n;
}

export function opPtr(): usize { return opBuf; }

/** Reads a possibly schema-qualified table name at the current token; sets collStart/collLen. */
function qualifiedName(): bool {
  if (tokKind != TK_WORD && tokKind != TK_QIDENT) return false;
  const start = tokStart;
  let end = tokEnd;
  for (;;) {
    next();
    if (!isPunct(46)) break;            // '.'
    next();
    if (tokKind != TK_WORD && tokKind != TK_QIDENT) return false;
    end = tokEnd;
  }
  collStart = start;
  collLen = <i32>(end - start);
  return true;
}

/** After a table name: true when nothing else (another table, more statements) follows at top level. */
function restIsSingleTable(allowAlias: bool): bool {
  // The token after the name is current (qualifiedName reads one ahead).
  if (allowAlias) {
    if (is("AS")) { next(); if (tokKind != TK_WORD && tokKind != TK_QIDENT) return false; next(); }
    else if (tokKind == TK_WORD && !isClauseKeyword() && !is("JOIN") && !is("NATURAL") && !is("CROSS") &&
             !is("INNER") && !is("LEFT") && !is("RIGHT") && !is("FULL")) { next(); }
  }
  if (isPunct(44)) return false;       // ',' a second table
  return onlyOneStatement(true);
}

function isClauseKeyword(): bool {
  return is("WHERE") || is("ORDER") || is("GROUP") || is("LIMIT") || is("OFFSET") || is("FOR") ||
         is("HAVING") || is("WINDOW") || is("FETCH") || is("RETURNING") || is("SET") || is("VALUES") ||
         is("ON") || is("DEFAULT") || is("SELECT") || is("OVERRIDING") || is("TO") || is("WITH") || is("LIMIT");
}

/** Tail check from the current token: true when one statement ends here (a trailing ';' at most).
 *  With `oneTable`, false too at a keyword that brings in another table or statement. */
function onlyOneStatement(oneTable: bool): bool {
  let depth = 0;
  for (;;) {
    if (tokKind == TK_END) return true;
    if (tokKind == TK_PUNCT) {
      const c = <u32>load<u8>(tokStart);
      if (c == 40) depth++;
      else if (c == 41) depth--;
      else if (c == 59 && depth <= 0) { next(); return tokKind == TK_END; } // only a trailing ';'
    } else if (oneTable && (is("JOIN") || is("FROM") || is("UNION") || is("INTERSECT") || is("EXCEPT") || is("USING"))) {
      return false;
    }
    next();
  }
  return true;
}

/** Table of simple single-table statements into collStart/collLen (collLen 0: not obvious). */
export function collectionName(ptr: usize, len: i32): void {
  lexPos = ptr;
  lexEnd = ptr + <usize>len;
  collLen = 0;
  next();
  if (is("SELECT")) {
    // The table after the first top-level FROM, when it is the only table of the statement.
    parenDepth = 0;
    for (;;) {
      if (!nextInStatement()) return;
      if (is("FROM")) { if (parenDepth != 0) return; break; }
      if (is("UNION") || is("INTERSECT") || is("EXCEPT")) return;
    }
    next();
    if (is("ONLY")) next();
    if (!qualifiedName()) return;
    if (isPunct(40)) { collLen = 0; return; } // FROM a_function(...): not a table
    const keepStart = collStart, keepLen = collLen;
    if (!restIsSingleTable(true)) { collLen = 0; return; }
    collStart = keepStart; collLen = keepLen;
    return;
  }
  let ok = false;
  if (is("INSERT")) {
    next(); if (!is("INTO")) return;
    next(); ok = qualifiedName();
  } else if (is("UPDATE")) {
    next(); if (is("ONLY")) next();
    ok = qualifiedName();
  } else if (is("DELETE")) {
    next(); if (!is("FROM")) return;
    next(); if (is("ONLY")) next();
    ok = qualifiedName();
  } else if (is("TRUNCATE") || is("LOCK")) {
    next(); if (is("TABLE")) next();
    if (is("ONLY")) next();
    ok = qualifiedName();
    if (ok && isPunct(44)) ok = false;
  } else if (is("COPY")) {
    next(); ok = qualifiedName();
  } else if (is("CREATE")) {
    next();
    if (is("GLOBAL") || is("LOCAL")) next();
    if (is("UNLOGGED") || is("TEMP") || is("TEMPORARY")) next();
    if (!is("TABLE")) return;
    next();
    if (is("IF")) { next(); if (!is("NOT")) return; next(); if (!is("EXISTS")) return; next(); }
    ok = qualifiedName();
  } else if (is("DROP") || is("ALTER")) {
    next(); if (!is("TABLE")) return;
    next();
    if (is("IF")) { next(); if (!is("EXISTS")) return; next(); }
    if (is("ONLY")) next();
    ok = qualifiedName();
    if (ok && isPunct(44)) ok = false;
  }
  if (!ok) { collLen = 0; return; }
  const keepStart = collStart, keepLen = collLen;
  if (!onlyOneStatement(false)) { collLen = 0; return; }
  collStart = keepStart; collLen = keepLen;
}
