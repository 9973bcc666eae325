import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";

/** The machine a run was measured on, as the results print it: absolute times mean little without it. */
export interface Machine {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
}

export function describeMachine(): Machine {
  let os = process.platform as string;
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? os;
  } catch {
    // no os-release: the platform name stays
  }
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    os,
  };
}

export function machineLine(m: Machine): string {
  return `${m.date}, ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, kernel ${m.kernel}`;
}
