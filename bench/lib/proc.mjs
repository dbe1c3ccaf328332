// Reading a process's RSS and CPU time from /proc (Linux).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticks;
export function clockTicks() {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** VmRSS in kB (and VmHWM, the peak). */
export function memOf(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), anonKb: kb('RssAnon'), fileKb: kb('RssFile'), threads: Number(/^Threads:\s+(\d+)/m.exec(s)?.[1] ?? NaN) };
}

/** utime + stime of the process (all its threads), in seconds. */
export function cpuOf(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // After the ')' the fields are numbered from 3 (state); utime is field 14, stime 15.
  const utime = Number(f[14 - 3]);
  const stime = Number(f[15 - 3]);
  return { ticks: utime + stime, seconds: (utime + stime) / clockTicks() };
}
