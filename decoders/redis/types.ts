// Per-connection state of the RESP decoder: commands waiting for their replies, in order.
export const MAX_PENDING: i32 = 256;
export const MAX_DEPTH: i32 = 16;

export class Pending {
  op: string = "";
  text: string = "";
  start: u64 = 0;
  reqBytes: u32 = 0;
}

export class Conn {
  queue: Array<Pending> = new Array<Pending>();
  head: i32 = 0;
}
