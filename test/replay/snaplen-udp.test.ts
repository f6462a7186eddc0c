// `telegen replay` of a capture with a small snaplen (tcpdump -s 120): a UDP datagram cut by it
// is delivered as far as it was captured, then its rest reported lost. It was reported whole as
// lost, so every DNS answer longer than the snaplen vanished and its query read as unanswered: a
// span with error.type=timeout ('DNS no response') where tshark reads the answer's id, rcode and
// question from the cut datagram. The committed dnsmasq/dig capture (decoders/dns/testdata, real
// peers) is cut by editcap -s 120. Needs tshark and editcap.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { repoRoot } from '../helpers/decoder';

const whole = path.join(repoRoot, 'decoders', 'dns', 'testdata', 'dnsmasq-dig.pcap');
const PORT = 60744; // dnsmasq's port in that capture
const have = (bin: string) => spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0;
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

test('replay: DNS answers cut by the snaplen keep their rcode; their queries are answered', { skip: !(have('tshark') && have('editcap')) && 'needs tshark and editcap' }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-snap-udp-'));
  try {
    const cut = path.join(tmp, 'cut.pcap');
    execFileSync('editcap', ['-F', 'pcap', '-s', '120', whole, cut], { stdio: 'ignore' });
    // tshark's UDP answers in the cut capture, and which of them were cut
    const out = execFileSync('tshark', ['-r', cut, '-d', `udp.port==${PORT},dns`, '-Y', 'udp && dns.flags.response == 1', '-T', 'fields',
      '-e', 'dns.id', '-e', 'dns.qry.name', '-e', 'dns.flags.rcode', '-e', 'frame.len', '-e', 'frame.cap_len'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const answers = out.split('\n').filter(Boolean).map((l) => {
      const [id, name, rcode, len, cap] = l.split('\t');
      return { id: Number(id), name, rcode: RCODES[Number(rcode)], cut: Number(cap) < Number(len) };
    });
    assert.ok(answers.filter((a) => a.cut).length >= 4, `answers cut by the snaplen: ${JSON.stringify(answers)}`);
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', cut], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
    assert.equal(r.status, 0, r.stderr);
    const spans = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((s) => s.attributes['network.transport'] === 'udp');
    for (const a of answers) {
      const s = spans.find((x) => x.attributes['telegen.dns.id'] === a.id && x.attributes['dns.question.name'] === a.name);
      assert.ok(s, `answer 0x${a.id.toString(16)} ${a.name}: no span`);
      assert.equal(s.attributes['dns.response_code'], a.rcode, `0x${a.id.toString(16)} ${a.name}`);
      assert.equal(s.attributes['telegen.no_response'], undefined, `0x${a.id.toString(16)} ${a.name} was answered`);
      // what ran past the captured bytes is not known
      if (a.cut) assert.equal(s.attributes['telegen.unknown'], true, `0x${a.id.toString(16)} ${a.name}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
