#!/usr/bin/python3
"""etc/sync.conf.sample from the programs' own schema, so the documented sample cannot drift from the code.

Every key line and its help come from `<daemon> --help-config` (common/config.c's schema plus the daemon's own
keys); this script adds the header and a short introduction per section.

  sample_config.py --write etc/sync.conf.sample PROGRAM...   rewrite the file (sections of daemons not given are
                                                              kept as they are in the file)
  sample_config.py --check etc/sync.conf.sample PROGRAM...   exit 1 and print a diff if the file disagrees

`cmake --build build --target sync-conf-sample` runs --write with every daemon the tree builds.
"""

import difflib
import os
import re
import subprocess
import sys

SHARED = ("paths", "control", "smtp", "http", "d1")
DAEMONS = ("tga-sync", "cricos-sync", "qb-reconcile")

HEADER = """\
# rtopacks-sync configuration: /etc/rtopacks-sync/sync.conf (another file with -c FILE or $RTOPACKS_SYNC_CONFIG).
#
# One INI file for every daemon and for syncctl.  Shared sections: [paths], [control], [smtp], [http], [d1]; then
# one section per daemon ([tga-sync], [cricos-sync], [qb-reconcile]).  Each daemon checks the shared sections and
# its own, and leaves the other daemons' sections to them: `<daemon> -n` checks the file for that daemon and names
# FILE:LINE, the key and what is wrong for every problem at once.
#
# Every key is listed with its default, commented out with ';'.  Remove the ';' and change the value to set one.
# Keys marked (required) have no default: the daemon does not start until they are set.
# Durations: 250ms, 30s, 5m, 2h, 1d.  Booleans: yes/no.  Paths are absolute.
#
# Secrets are never written here.  Under systemd they come from credentials: put each in
# /etc/credstore/rtopacks-sync.<name> (root, mode 0600): tga-password, smtp-password, qb-client-secret,
# d1-api-token.  Without systemd, name a file (mode 0600) with the *_file key of the section.
#
# This file is generated from the programs' own lists of keys (`<daemon> --help-config`):
# `cmake --build build --target sync-conf-sample` rewrites it, and a test fails when it and the programs disagree.
"""

INTROS = {
    "paths": """\
# Where things live.  The databases are shared by the daemons: /var/lib/rtopacks-sync is root:rtopacks-sync 2770,
# ops.db is 0664 (operators read it) and rtopacks.db 0660 (systemd-tmpfiles creates them; see docs/install.md).
# schedules_dir defaults to <prefix>/share/rtopacks-sync/schedules (/usr/share/... in the .deb).""",
    "control": """\
# The control sockets that syncctl talks to.  Set operators_group = rtopacks-ops to let the members of the operators'
# group use syncctl without sudo (they can connect and read ops.db, and write nothing; docs/install.md).  Never
# rtopacks-sync: that is the daemons' own group, which may write the databases.""",
    "smtp": """\
# Completion, failure and alert mail (the operator's pager: a missed run is mailed too).""",
    "http": """\
# Defaults for every daemon's HTTP requests; a daemon section may override each of these keys.""",
    "d1": """\
# Cloudflare D1 (issue 14): every daemon mirrors its runs, steps and cursor to the ops database (the Observatory
# reads them).  Off while account_id is unset.  The API token (D1 Edit): systemd credential d1-api-token, or
# token_file.  A D1 outage never fails a sync: the rows wait in ops.db and `syncctl status` shows them.""",
    "tga-sync": """\
# tga-sync: the weekly sync of the National Register of VET (training.gov.au SOAP web services).
# Set username (the TGA account: required with source = soap, the default) and give the password: systemd
# credential tga-password, or password_file.  Or set source = rest (the public REST API, no account).
# `tga-sync -n` says what is still missing.""",
    "cricos-sync": """\
# cricos-sync: the monthly CRICOS sync from data.gov.au (CKAN), with the edition watch.""",
    "qb-reconcile": """\
# qb-reconcile: the daily QuickBooks heartbeat, invoice push and reconciliation.
# Client secret: systemd credential qb-client-secret, or client_secret_file.  The token store is kept in the
# daemon's private state directory (<state_dir>/qb-reconcile/, 0700).""",
}

SCHEDULES_DIR_RE = re.compile(r"^;schedules_dir = .*/share/rtopacks-sync/schedules$")
SCHEDULES_DIR_LINE = ";schedules_dir = /usr/share/rtopacks-sync/schedules"


def help_config(program):
    """{section: [lines]} from `program --help-config`, in order; key lines normalised to the sample's form."""
    out = subprocess.run([program, "--help-config"], capture_output=True, text=True, check=True).stdout
    sections, cur = {}, None
    pending_help = []
    for line in out.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            cur = m.group(1)
            sections[cur] = []
            continue
        if cur is None or line == "":
            continue
        if line.startswith("# "):
            pending_help.append(line)
            continue
        m = re.match(r"^(;?)([a-z0-9_]+) = (.*)$", line)
        if not m:
            raise ValueError("%s --help-config: unexpected line %r" % (program, line))
        required = m.group(1) == ""
        help_lines = pending_help
        pending_help = []
        if required:
            help_lines = [help_lines[0].replace("# ", "# (required) ", 1)] + help_lines[1:] if help_lines else \
                ["# (required)"]
        key_line = ";%s = %s" % (m.group(2), m.group(3))
        key_line = key_line.rstrip()
        if SCHEDULES_DIR_RE.match(key_line):
            key_line = SCHEDULES_DIR_LINE
        sections[cur].extend(help_lines + [key_line])
    return sections


def render(sections):
    parts = [HEADER]
    for name, lines in sections.items():
        block = ["[%s]" % name]
        if name in INTROS:
            block.append(INTROS[name] + "\n")
        block.extend(lines)
        parts.append("\n".join(block) + "\n")
    return "\n".join(parts)


def parse_sample(path):
    """{section: [lines]} of an existing sample (header and intros dropped)."""
    sections, cur = {}, None
    intro = set()
    for text in INTROS.values():
        intro.update(text.splitlines())
    if not os.path.exists(path):
        return sections
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for line in text.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            cur = m.group(1)
            sections[cur] = []
            continue
        if cur is None or line == "" or line in intro:
            continue
        sections[cur].append(line)
    return sections


def build(path, programs):
    """The sample as the programs describe it; daemon sections of programs not given come from the file."""
    existing = parse_sample(path)
    shared, own = None, {}
    for p in programs:
        secs = help_config(p)
        if shared is None:
            shared = {k: v for k, v in secs.items() if k in SHARED}
        for k, v in secs.items():
            if k not in SHARED:
                own[k] = v
    if shared is None:
        shared = {k: v for k, v in existing.items() if k in SHARED}
    sections = dict(shared)
    for d in DAEMONS:
        if d in own:
            sections[d] = own[d]
        elif d in existing:
            sections[d] = existing[d]
    return render(sections)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("--write", "--check"):
        sys.stderr.write(__doc__)
        return 2
    path, programs = argv[2], argv[3:]
    want = build(path, programs)
    if argv[1] == "--write":
        with open(path, "w", encoding="utf-8") as f:
            f.write(want)
        print("wrote %s from %s" % (path, ", ".join(os.path.basename(p) for p in programs) or "the file itself"))
        return 0
    have = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            have = f.read()
    if have != want:
        sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True), path,
                                                   "from --help-config"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
