// AssemblyScript-only: the kept start of a message whose end may be lost (dns, pgsql, kafka).
// A message still incomplete at the end of a read is held by the host and presented again with
// the next read. When the host reports bytes lost instead (a segment cut by the snaplen, segments
// the capture dropped), the held bytes are gone with them: a decoder that kept their start decodes
// the message from it (what lies past it unknown), as tshark decodes a cut segment, instead of
// losing the message whole. Each decoder decides when a loss allows that (its framing).

/** One kept start; its bytes follow these fields (at most its pool's cap of them). A stream holds
 *  it as a usize (0: none yet): unmanaged, so unmanaged stream states (dns) can hold one too. */
@unmanaged export class Head {
  /** Bytes of the message the host held (more than are kept when the message is long); 0: none. */
  have: i64 = 0;
  /** The whole message's size, as its framing gives it. */
  total: i64 = 0;
  /** When its first byte was seen. */
  ts: u64 = 0;
}

/** Decoder-wide: heads of `cap` bytes, at most `max` of them in use at once (a bound on memory);
 *  past that a stream without one loses a cut message whole, as it would without this. */
export class HeadPool {
  cap: i64;
  max: i32;
  used: i32 = 0;

  constructor(cap: i64, max: i32) {
    this.cap = cap;
    this.max = max;
  }

  /** Keeps the start of a message (`have` bytes at `at` of a message of `total` bytes, first seen
   *  at `ts`) in `head`, which is made when 0 and the pool allows. Returns the head to store in the
   *  stream (0: none, nothing kept). */
  keep(head: usize, at: usize, have: i64, total: i64, ts: u64): usize {
    if (head == 0) {
      if (this.used >= this.max) return 0;
      head = heap.alloc(offsetof<Head>() + <usize>this.cap);
      this.used++;
    }
    memory.copy(head + offsetof<Head>(), at, <usize>(have < this.cap ? have : this.cap));
    const h = changetype<Head>(head);
    h.have = have;
    h.total = total;
    h.ts = ts;
    return head;
  }

  /** How many of `have` held bytes a head keeps (the first ones). */
  @inline kept(have: i64): i64 {
    return have < this.cap ? have : this.cap;
  }

  /** The stream is gone: its head (if any) goes back to the pool. */
  free(head: usize): void {
    if (head == 0) return;
    heap.free(head);
    this.used--;
  }
}

/** Bytes held of the message kept in `head` (0: none, or no head). */
@inline export function held(head: usize): i64 {
  return head == 0 ? 0 : changetype<Head>(head).have;
}

/** None held any more: the held bytes came again with a read, or were decoded from the head. */
@inline export function forget(head: usize): void {
  if (head != 0) changetype<Head>(head).have = 0;
}

/** Where the kept bytes start. */
@inline export function headBytes(head: usize): usize {
  return head + offsetof<Head>();
}
