// Cloud provider from DMI (offline, instant), then — only when configured — the instance metadata
// service with a short timeout and no retries, never blocking start-up.
import * as fs from 'fs';
import * as http from 'http';

export interface CloudInfo {
  provider?: string;
  platform?: string;
  region?: string;
  availabilityZone?: string;
  accountId?: string;
  hostType?: string;
  instanceId?: string;
  /** dmi | imds */
  source?: string;
  dmi?: Record<string, string>;
}

const DMI_FIELDS = ['sys_vendor', 'product_name', 'product_version', 'product_serial', 'board_vendor', 'board_name', 'board_asset_tag', 'chassis_vendor', 'chassis_asset_tag', 'bios_vendor', 'bios_version'];

export function readDmi(root = '/sys/class/dmi/id'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of DMI_FIELDS) {
    try { const v = fs.readFileSync(`${root}/${f}`, 'utf8').trim(); if (v) out[f] = v; } catch { /* absent or root-only */ }
  }
  return out;
}

/** Values per OTel cloud.* conventions where they exist (aws, gcp, azure, alibaba_cloud, …). */
export function cloudFromDmi(d: Record<string, string>): CloudInfo {
  const has = (f: string, re: RegExp) => re.test(d[f] ?? '');
  const r = (provider: string, platform: string, hostType?: string): CloudInfo => ({ provider, platform, hostType, source: 'dmi', dmi: d });
  // Nitro: sys_vendor "Amazon EC2", product_name the instance type. Xen: bios_version "4.2.amazon".
  if (has('sys_vendor', /^Amazon EC2/) || has('board_vendor', /^Amazon EC2/) || has('bios_vendor', /^Amazon EC2/) || has('bios_version', /amazon/i) || has('product_version', /amazon/i)) {
    return r('aws', 'aws_ec2', d.sys_vendor === 'Amazon EC2' && d.product_name && /^[a-z0-9-]+\.[a-z0-9]+$/.test(d.product_name) ? d.product_name : undefined);
  }
  if (has('product_name', /^Google Compute Engine/) || has('sys_vendor', /^Google/) || has('bios_vendor', /^Google/)) return r('gcp', 'gcp_compute_engine');
  // Azure: Hyper-V with the fixed Azure chassis asset tag.
  if (d.chassis_asset_tag === '7783-7084-3265-9085-8269-3286-77' || (has('sys_vendor', /^Microsoft Corporation/) && has('product_name', /Virtual Machine/) && has('chassis_asset_tag', /^7783-/))) return r('azure', 'azure_vm');
  if (has('sys_vendor', /^Alibaba Cloud/) || has('product_name', /^Alibaba Cloud ECS/)) return r('alibaba_cloud', 'alibaba_cloud_ecs');
  if (has('chassis_asset_tag', /^OracleCloud\.com/)) return r('oracle_cloud', 'oracle_cloud_compute');
  if (has('sys_vendor', /^Tencent Cloud/)) return r('tencent_cloud', 'tencent_cloud_cvm');
  if (has('sys_vendor', /^DigitalOcean/)) return r('digitalocean', 'digitalocean_droplet');
  if (has('sys_vendor', /^Hetzner/)) return r('hetzner', 'hetzner_cloud_server');
  if (has('sys_vendor', /^Scaleway/)) return r('scaleway', 'scaleway_instance');
  if (has('sys_vendor', /^Vultr/)) return r('vultr', 'vultr_instance');
  if (has('sys_vendor', /^Exoscale/) || has('product_name', /^Exoscale/)) return r('exoscale', 'exoscale_compute');
  if (has('product_name', /^OpenStack (Nova|Compute)/) || has('sys_vendor', /^OpenStack Foundation/)) return r('openstack', 'openstack_nova');
  return { dmi: d };
}

export function cloudAttributes(c: CloudInfo): Record<string, string> {
  const a: Record<string, string> = {};
  if (c.provider) a['cloud.provider'] = c.provider;
  if (c.platform) a['cloud.platform'] = c.platform;
  if (c.region) a['cloud.region'] = c.region;
  if (c.availabilityZone) a['cloud.availability_zone'] = c.availabilityZone;
  if (c.accountId) a['cloud.account.id'] = c.accountId;
  if (c.hostType) a['host.type'] = c.hostType;
  if (c.instanceId) a['host.id'] = c.instanceId;
  return a;
}

function get(url: string, headers: Record<string, string>, timeoutMs: number, method = 'GET'): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; if (n < 1 << 20) chunks.push(c); });
      res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(chunks).toString('utf8') : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => { req.destroy(); resolve(undefined); });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/**
 * Instance metadata for the provider DMI named: one attempt, `timeoutMs` each, no retries. Base URL
 * is configurable (tests point it at loopback). Returns the DMI facts enriched, or unchanged.
 */
export async function enrichFromImds(c: CloudInfo, timeoutMs = 500, base = 'http://169.254.169.254'): Promise<CloudInfo> {
  const j = (s: string | undefined) => { try { return s ? JSON.parse(s) : undefined; } catch { return undefined; } };
  if (c.provider === 'aws') {
    const token = await get(`${base}/latest/api/token`, { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, timeoutMs, 'PUT');
    const doc = j(await get(`${base}/latest/dynamic/instance-identity/document`, token ? { 'x-aws-ec2-metadata-token': token } : {}, timeoutMs));
    if (doc) return { ...c, source: 'imds', region: doc.region, availabilityZone: doc.availabilityZone, accountId: doc.accountId, hostType: doc.instanceType ?? c.hostType, instanceId: doc.instanceId };
  } else if (c.provider === 'gcp') {
    const doc = j(await get(`${base}/computeMetadata/v1/?recursive=true`, { 'Metadata-Flavor': 'Google' }, timeoutMs));
    if (doc?.instance) {
      const zone = String(doc.instance.zone ?? '').split('/').pop();
      return { ...c, source: 'imds', availabilityZone: zone, region: zone?.replace(/-[a-z]$/, ''), accountId: doc.project?.projectId, hostType: String(doc.instance.machineType ?? '').split('/').pop(), instanceId: doc.instance.id !== undefined ? String(doc.instance.id) : undefined };
    }
  } else if (c.provider === 'azure') {
    const doc = j(await get(`${base}/metadata/instance/compute?api-version=2021-02-01`, { Metadata: 'true' }, timeoutMs));
    if (doc) return { ...c, source: 'imds', region: doc.location, availabilityZone: doc.zone || undefined, accountId: doc.subscriptionId, hostType: doc.vmSize, instanceId: doc.vmId };
  }
  return c;
}
