// Process facts for enrichment. The discovery engine (host/src/discovery) reads them once per pid
// and keeps them current (exec rescans, exit events); this is the pipeline's view of it.
import { discovery } from '../discovery';

export interface ProcessInfo {
  pid: number;
  executableName: string;
  executablePath?: string;
  commandLine?: string;
  serviceName: string;
  /** Resource attributes for this process's spans: service, process.*, host.*, os.*, cloud.*, k8s.*, container.*. */
  resource: Record<string, string | number>;
}

export function processInfo(pid: number, comm?: string): ProcessInfo {
  const d = discovery();
  const p = d.process(pid, comm);
  return { pid, executableName: p.executableName, executablePath: p.executablePath, commandLine: p.commandLine, serviceName: p.serviceName, resource: d.resource(pid, comm) };
}

export function forgetProcess(pid: number): void { discovery().forget(pid); }
