// DNS over TCP in a capture with a small snaplen (tcpdump -s 200): the segment carrying dig's
// TCP retry for the 8-string TXT answer (2.1 KB) keeps 134 bytes, the replay reports the rest as
// lost. The dns decoder refused the stream at any TCP gap (framing lost), so the answer tshark
// reads from the cut segment (NOERROR, 8 answers, the question) had no span. The framing is not
// lost when the gap ends inside the message whose start the host held: that start is decoded as
// the message cut short (FLAG_UNKNOWN) and the rest of it skipped. Capture: the committed dnsmasq /
// dig / Node resolver session (decoders/dns/testdata), cut by editcap -s 200. Needs tshark, editcap.
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

test('dns: answers over TCP cut by the snaplen keep their spans, rcode and counts as tshark reads them', { skip: !(have('tshark') && have('editcap')) && 'needs tshark and editcap' }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'telegen-dns-snap-'));
  try {
    const cut = path.join(tmp, 'cut.pcap');
    execFileSync('editcap', ['-F', 'pcap', '-s', '200', whole, cut], { stdio: 'ignore' });
    const out = execFileSync('tshark', ['-r', cut, '-d', `tcp.port==${PORT},dns`, '-d', `udp.port==${PORT},dns`, '-Y', 'dns.flags.response == 1', '-T', 'fields',
      '-e', 'dns.id', '-e', 'dns.qry.name', '-e', 'dns.flags.rcode', '-e', 'dns.count.answers', '-e', 'tcp.stream'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const answers = out.split('\n').filter(Boolean).map((l) => {
      const [id, name, rcode, count, tcp] = l.split('\t');
      return { id: Number(id), name, rcode: RCODES[Number(rcode)], count: Number(count), tcp: tcp !== '' };
    });
    assert.ok(answers.some((a) => a.tcp && a.name === 'big.example.test'), JSON.stringify(answers));
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'telegen'), 'replay', cut], { encoding: 'utf8', env: { ...process.env, TELEGEN_LOG_LEVEL: 'warn' } });
    assert.equal(r.status, 0, r.stderr);
    const spans = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).attributes as Record<string, unknown>);
    for (const a of answers) {
      const where = `0x${a.id.toString(16)} ${a.name} over ${a.tcp ? 'TCP' : 'UDP'}`;
      const s = spans.find((x) => x['telegen.dns.id'] === a.id && x['dns.question.name'] === a.name && (x['network.transport'] === 'tcp') === a.tcp);
      assert.ok(s, `${where}: no span`);
      assert.deepEqual([s['dns.response_code'], s['telegen.dns.answer_count'], s['telegen.no_response']], [a.rcode, a.count, undefined], where);
    }
    const big = spans.find((x) => x['dns.question.name'] === 'big.example.test' && x['network.transport'] === 'tcp')!;
    assert.equal(big['telegen.unknown'], true, 'its answers ran past the captured bytes');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
