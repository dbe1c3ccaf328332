import { doctorExitCode, runDoctor, summarize, type Finding } from '../../doctor/doctor.js';
import type { Values } from '../commands.js';
import { out, printJson } from '../output.js';
import { withContext } from '../session.js';

const MARK: Record<Finding['severity'], string> = { danger: '[DANGER]', warn: '[warn]  ', ok: '[ok]    ' };

export function renderFinding(f: Finding): string {
  return `${MARK[f.severity]} ${f.message}${f.fix ? `  Fix: ${f.fix}` : ''}`;
}

export function renderSummary(findings: Finding[], offline: boolean): string {
  const s = summarize(findings);
  const counts = `${s.danger} danger, ${s.warn} warning(s), ${s.ok} ok`;
  const skipped = offline ? ' (API reachability not checked: --offline)' : '';
  return s.danger
    ? `${counts}${skipped}: fix the DANGER lines first.`
    : `${counts}${skipped}: nothing unsafe found${s.warn ? ', but see the warnings' : ''}.`;
}

/** doctor [--offline]: exit 0 when nothing is 'danger', 2 otherwise. */
export async function run(values: Values): Promise<number> {
  const offline = values.offline === true;
  // recover: false, since doctor looks and reports; it does not finish rotations (no API calls with --offline).
  return withContext(
    values,
    async (ctx) => {
      const findings = await runDoctor(ctx, { offline });
      if (values.json) {
        printJson({ findings, summary: summarize(findings) });
      } else {
        for (const f of findings) out(renderFinding(f));
        if (findings.length) out();
        out(renderSummary(findings, offline));
      }
      return doctorExitCode(findings);
    },
    { recover: false },
  );
}
