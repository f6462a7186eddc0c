// Per-connection state of the RESP decoder: commands waiting for their replies, in order.
export const MAX_PENDING: i32 = 256;
export const MAX_DEPTH: i32 = 16;
/** A command unanswered this long is reported (tick) as a timeout: Redis answers in
 *  microseconds, so a minute is a hung server or a lost reply, not a slow one. */
export const REPLY_TIMEOUT_NS: u64 = 60_000_000_000;

export class Pending {
  op: string = "";
  text: string = "";
  start: u64 = 0;
  reqBytes: u32 = 0;
}

export class Conn {
  queue: Array<Pending> = new Array<Pending>();
  head: i32 = 0;
  /** Replies still owed to commands reported as timeouts: RESP answers in order, so a late
   *  reply belongs to them, not to the commands sent since. */
  owed: i32 = 0;
}
