"""End states for crash torture and fault matrices: "the same as an uninterrupted cycle", table by table, by content.

A tortured or faulted cycle spans several runs, so a few columns differ from an uninterrupted cycle by design: the
ones that name one of our runs or read our clock (or the fake upstream's running clock).  Rather than dropping them,
normalised() replaces their values with a marker and keeps NULL as NULL, so "was it set" still counts (a replayed
page that sets changed_cycle on a row that did not change is still a difference).  Only columns whose very value
cannot be compared are dropped (a random id, a counter of commits).  Each daemon's test lists its choices, with why.

ops_state() is the part of ops.db that must equal an uninterrupted cycle's, independent of how many runs it took:
the final run (status, phase, changes, summary), every earlier run of the cycle marked stale or failed (never left
running), the cursor, and the mail queued (subject and body, minus the lines that name runs and times).
"""

import json
import os
import re

from harness import dump_db, query

MARK = "<set>"


def _match(spec, table, col):
    return col in spec or "%s.%s" % (table, col) in spec


def normalised(db_path, exclude_tables=(), include_tables=None, mark=(), drop=(), translate=None):
    """dump_db() with columns in `mark` replaced by MARK (NULL kept), columns in `drop` left out and columns in
    `translate` ({"table.col" or "col": fn(value, row_dict)}) mapped through fn.  Names are "col" (any table) or
    "table.col"."""
    out = {}
    for t, (cols, rows) in dump_db(db_path, exclude_tables=exclude_tables).items():
        if include_tables is not None and t not in include_tables:
            continue
        keep = [c for c in cols if not _match(drop, t, c)]
        new = []
        for r in rows:
            rd = dict(zip(cols, r))
            v2 = []
            for c in keep:
                v = rd[c]
                if translate:
                    fn = translate.get("%s.%s" % (t, c)) or translate.get(c)
                    if fn:
                        v = fn(v, rd)
                if _match(mark, t, c) and v is not None:
                    v = MARK
                v2.append(v)
            new.append(tuple(v2))
        out[t] = (keep, sorted(new, key=lambda r: tuple("" if v is None else str(v) for v in r)))
    return out


# Mail lines that name a run, a trigger (a resumed run says "resume") or a time.
MAIL_VOLATILE = re.compile(r"^(Run ID|Trigger|Started|Finished|Duration|Window|Resumed from|Cycle|Run):")


def mail_body(message):
    """A queued message without its headers and the lines that name runs and times."""
    body = message.replace("\r\n", "\n").split("\n\n", 1)[-1]
    return "\n".join(ln for ln in body.split("\n") if not MAIL_VOLATILE.match(ln))


def ops_state(ops, sync_type, summary_fn=None, job_state_fn=None, mail_fn=mail_body, first_cycle=False):
    """The cycle's outcome in ops.db, comparable between an uninterrupted and an interrupted cycle, as
    {"ops.<what>": (columns, rows)} like dump_db(), so that torture.diff_states() can name differences.
    first_cycle: the runs of the first cycle that ran a step only (a fault matrix runs one more cycle after a
    complete one)."""
    runs = query(ops, "SELECT run_id, status, phase, changes, summary, error FROM sync_runs WHERE sync_type = ?"
                      " ORDER BY started_at, run_id", (sync_type,))
    if first_cycle and runs:
        # The first cycle that ran a step: a run whose very first commit failed (rtopacks.db read-only) is a cycle
        # of its own with no step, and the next trigger starts the cycle that the case is about.
        first = (query(ops, "SELECT cycle_id FROM sync_runs r WHERE sync_type = ? AND EXISTS (SELECT 1 FROM sync_steps"
                            " s WHERE s.run_id = r.run_id) ORDER BY started_at, run_id LIMIT 1", (sync_type,))
                 or query(ops, "SELECT cycle_id FROM sync_runs WHERE sync_type = ? ORDER BY started_at, run_id"
                               " LIMIT 1", (sync_type,)))[0][0]
        runs = query(ops, "SELECT run_id, status, phase, changes, summary, error FROM sync_runs WHERE sync_type = ?"
                          " AND cycle_id = ? ORDER BY started_at, run_id", (sync_type, first))
    out = {}
    final = []
    if runs:
        _, status, phase, changes, summary, error = runs[-1]
        s = json.loads(summary) if summary else None
        if s is not None and summary_fn:
            s = summary_fn(s)
        final.append((status, phase, changes, json.dumps(s, sort_keys=True), error))
    out["ops.final_run"] = (["status", "phase", "changes", "summary", "error"], final)
    # Every run before the last was interrupted: the engine marks it stale when the next one starts.
    out["ops.earlier_runs_not_stale"] = (["status", "phase"], [(r[1], r[2]) for r in runs[:-1] if r[1] != "stale"])
    out["ops.runs_still_running"] = (["run_id"], [(r[0],) for r in runs if r[1] == "running"])
    cur = query(ops, 'SELECT cycle_phase, phase_cursor, full, job_state FROM "%s_cursor"' % sync_type)
    rows = []
    if cur:
        phase, pcur, full, job = cur[0]
        job = json.loads(job) if job else {}
        if job_state_fn:
            job = job_state_fn(job)
        rows.append((phase, pcur, full, json.dumps(job, sort_keys=True)))
    out["ops.cursor"] = (["cycle_phase", "phase_cursor", "full", "job_state"], rows)
    mails = query(ops, "SELECT sync_type, status, subject, message FROM mail_outbox WHERE sync_type = ?",
                  (sync_type,))
    out["ops.mail_outbox"] = (["sync_type", "status", "subject", "body"],
                              sorted((m[0], m[1], m[2], mail_fn(m[3]) if mail_fn else None) for m in mails))
    out["ops.sync_alerts"] = (["sync_type", "kind", "open"],
                              sorted(query(ops, "SELECT sync_type, kind, cleared_at IS NULL FROM sync_alerts"
                                                " WHERE sync_type = ?", (sync_type,))))
    return out


def json_marked(*keys):
    """A translate function for a JSON text column: the top-level keys given replaced by MARK, keys sorted."""
    def fn(v, row):
        if v is None:
            return None
        try:
            j = json.loads(v)
        except ValueError:
            return v
        if isinstance(j, dict):
            j = {k: (MARK if k in keys and x is not None else x) for k, x in j.items()}
        return json.dumps(j, sort_keys=True)
    return fn


def checkpoint_agrees(ops, corpus, sync_type):
    """The engine's invariant between the two files at rest: rtopacks.db's checkpoint is ops.db's cursor, commit
    for commit (seq, corpus_seq, run, cycle, phase and position).  As a dump_db()-like table."""
    cols = "seq, corpus_seq, run_id, cycle_id, cycle_phase, phase_cursor"
    cp = query(corpus, "SELECT %s FROM sync_checkpoint WHERE sync_type = ?" % cols, (sync_type,))
    cur = query(ops, 'SELECT %s FROM "%s_cursor"' % (cols, sync_type))
    ok = bool(cp) and bool(cur) and cp[0] == cur[0]
    return (["checkpoint = cursor"], [(ok,)])


def brief(error):
    """A run row's error for a printed table: without loopback URLs, work directories and quoted SQL."""
    e = error or ""
    e = re.sub(r"https?://127\.0\.0\.1:\d+/\S*?: ", "", e)
    e = re.sub(r"/tmp/rs-[^/\s]+/(state/)?", "", e)
    e = re.sub(r" \(in: .*?\)(?= \()", "", e)
    return e


def short(mismatches, width=None):
    """torture() mismatches cut to a readable length (for assertion messages): 600 characters, or
    TORTURE_DIFF_WIDTH to see more of a failing seed."""
    width = width or int(os.environ.get("TORTURE_DIFF_WIDTH", "600"))
    return [m if len(m) <= width else m[:width] + "..." for m in mismatches]


def without(d, *keys):
    """A copy of dict d without keys (for JSON summaries and job states)."""
    return {k: v for k, v in d.items() if k not in keys}
