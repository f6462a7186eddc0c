// Severity of an application log line, from the formats processes commonly print: JSON with a
// level field (pino/bunyan numbers, zap/logrus/structlog/winston words), logfmt `level=…`, and
// a level word near the start ("ERROR ...", "[WARN] ...", "2026-01-01 12:00:00,123 INFO ...",
// Python logging's "ERROR:root:..."). Unknown stays UNSPECIFIED: stderr is not an error level.
import { SeverityNumber } from '@opentelemetry/api-logs';

export interface Severity { number: SeverityNumber; text: string }

const WORDS: Record<string, Severity> = {
  trace: { number: SeverityNumber.TRACE, text: 'TRACE' },
  debug: { number: SeverityNumber.DEBUG, text: 'DEBUG' },
  dbg: { number: SeverityNumber.DEBUG, text: 'DEBUG' },
  info: { number: SeverityNumber.INFO, text: 'INFO' },
  information: { number: SeverityNumber.INFO, text: 'INFO' },
  notice: { number: SeverityNumber.INFO2, text: 'NOTICE' },
  warn: { number: SeverityNumber.WARN, text: 'WARN' },
  warning: { number: SeverityNumber.WARN, text: 'WARN' },
  error: { number: SeverityNumber.ERROR, text: 'ERROR' },
  err: { number: SeverityNumber.ERROR, text: 'ERROR' },
  critical: { number: SeverityNumber.FATAL, text: 'FATAL' },
  crit: { number: SeverityNumber.FATAL, text: 'FATAL' },
  fatal: { number: SeverityNumber.FATAL, text: 'FATAL' },
  panic: { number: SeverityNumber.FATAL, text: 'FATAL' },
  emerg: { number: SeverityNumber.FATAL4, text: 'FATAL' },
  alert: { number: SeverityNumber.FATAL2, text: 'FATAL' },
};

const JSON_KEYS = ['level', 'severity', 'lvl', 'levelname', 'log.level', 'loglevel', 'severity_text', 'severityText', '@l'];

/** pino / bunyan numeric levels. */
function fromNumber(n: number): Severity | undefined {
  if (n >= 60) return WORDS.fatal;
  if (n >= 50) return WORDS.error;
  if (n >= 40) return WORDS.warn;
  if (n >= 30) return WORDS.info;
  if (n >= 20) return WORDS.debug;
  if (n >= 10) return WORDS.trace;
  return undefined;
}

function fromValue(v: unknown): Severity | undefined {
  if (typeof v === 'number') return fromNumber(v);
  if (typeof v === 'string') return WORDS[v.trim().toLowerCase()];
  return undefined;
}

function fromJson(line: string): Severity | undefined {
  let o: unknown;
  try { o = JSON.parse(line); } catch { return undefined; }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return undefined;
  const rec = o as Record<string, unknown>;
  for (const k of JSON_KEYS) {
    const s = fromValue(rec[k]);
    if (s) return s;
  }
  // ECS / OTel-shaped: {"log": {"level": "..."}}
  const nested = rec.log;
  if (nested && typeof nested === 'object') return fromValue((nested as Record<string, unknown>).level);
  return undefined;
}

// logfmt and friends: level=warn, severity="ERROR", lvl=info
const KEYED = /(?:^|[\s,{])(?:level|severity|lvl|loglevel)\s*[=:]\s*"?([A-Za-z]+)"?/i;
// A level word as a token within the first 64 characters (after a timestamp, a bracket, a
// program name), upper case or Capitalized so that "error" inside free prose does not count.
const WORD = /(?:^|[\s[(<|:])(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|PANIC|Trace|Debug|Info|Notice|Warn|Warning|Error|Critical|Fatal|Panic)(?=$|[\s\]):|>,-])/;

/** The severity a line states, or undefined. */
export function parseSeverity(line: string): Severity | undefined {
  const t = line.trimStart();
  if (t.startsWith('{')) {
    const s = fromJson(t);
    if (s) return s;
  }
  const head = t.length > 64 ? t.slice(0, 64) : t;
  const k = KEYED.exec(head);
  if (k) {
    const s = WORDS[k[1].toLowerCase()];
    if (s) return s;
  }
  const w = WORD.exec(head);
  return w ? WORDS[w[1].toLowerCase()] : undefined;
}
