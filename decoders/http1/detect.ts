// detect(): confidence that the first bytes of a direction are HTTP/1.x. The two directions start
// differently (RFC 9112 §3, §4): a client sends a request line, a server a status line. The host
// asks both directions of a connection whose side it does not know (a connection older than the
// agent), so a status line must not pass as a request: read by the client, it would make the
// client the server.
import { DIR_RESPONSE } from "../abi/abi";
import { DirState } from "./types";
import { checkStartLine, isTchar, bytesAre } from "./parse";

// Methods of RFC 9110, PATCH (RFC 5789), WebDAV (RFC 4918, 3253, 3648, 3744, 4791, 5323, 5842),
// and common extensions. Not PRI: "PRI * HTTP/2.0" is the HTTP/2 preface.
const METHODS: string[] = [
  "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
  "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT",
  "MKACTIVITY", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MERGE", "MKWORKSPACE", "UPDATE", "LABEL",
  "VERSION-CONTROL", "BASELINE-CONTROL", "MKCALENDAR", "ORDERPATCH", "ACL", "BIND", "REBIND",
  "UNBIND", "LINK", "UNLINK", "PURGE", "QUERY", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
  "SOURCE", "MKREDIRECTREF", "UPDATEREDIRECTREF",
];

const probe = new DirState();

function knownMethod(p: usize, n: u32): bool {
  for (let i = 0; i < METHODS.length; i++) if (bytesAre(p, n, METHODS[i])) return true;
  return false;
}

export function detectHttp(dir: i32, p: usize, len: u32): i32 {
  if (len == 0) return 0;
  if (dir == DIR_RESPONSE) {
    probe.resetHead();
    const rs = checkStartLine(probe, p, len, false);
    if (rs == 1) return 95;
    if (rs == 0) return len >= 9 ? 80 : len >= 5 ? 60 : 10;
    return 0;
  }
  let m: u32 = 0;
  while (m < len && m < 32 && isTchar(<u32>load<u8>(p + <usize>m))) m++;
  if (m == 0) return 0;
  const known = (m < len && load<u8>(p + <usize>m) == 0x20) ? knownMethod(p, m) : false;
  probe.resetHead();
  const rq = checkStartLine(probe, p, len, true);
  if (rq < 0) return 0;
  if (rq == 1) return known ? 95 : 70;
  // incomplete but plausible so far
  if (known) return 60;
  return m == len ? 10 : 5;
}
