#!/usr/bin/python3
"""How ctest runs one Python test file: its unittest tests (verbosity 2, as the files' own main does), exiting
  0   every test passed,
  77  they passed but some were skipped (ctest's SKIP_RETURN_CODE: the summary lists the file as skipped, with
      the reasons printed here, instead of counting it as a pass),
  1   a test failed or raised.

It is also the one way to run a file by hand (no test file changes sys.path itself; this does, once):

    RTOPACKS_BUILD_BIN=build-test/bin /usr/bin/python3 tests/kit/runtest.py daemons/tga-sync/tests/test_sync.py [Class.test]

The import path, first match wins: the test's own folder (its helper modules: tgalib, cricoslib, qbenv, hostile...),
tests/kit (harness, env, crash, the fault matrix kit), tests/fakes (the fakes' modules), then the other folders of
tests/ and each daemon's daemons/<name>/tests/ (a security or systemd test may use another folder's helpers: qbenv,
tgalib, hardening).  A test that still
inserts a path of its own (tests/lib, its folder) changes nothing: every such folder is already here or gone."""

import importlib.util
import os
import sys
import unittest

SKIPPED = 77
KIT = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(KIT)
REPO = os.path.dirname(TESTS)


def import_path(path):
    """The folders a test file imports from, in order (see above)."""
    own = os.path.dirname(os.path.abspath(path))
    first = [own, KIT, os.path.join(TESTS, "fakes")]
    others = sorted(os.path.join(TESTS, d) for d in os.listdir(TESTS)
                    if os.path.isdir(os.path.join(TESTS, d)) and not d.startswith((".", "_")))
    daemons = os.path.join(REPO, "daemons")
    others += sorted(os.path.join(daemons, d, "tests") for d in os.listdir(daemons)
                     if os.path.isdir(os.path.join(daemons, d, "tests")))
    out = []
    for d in first + others:
        if d not in out:
            out.append(d)
    return out


def main(path, names=()):
    name = os.path.splitext(os.path.basename(path))[0]
    first = import_path(path)
    sys.path[:] = first + [d for d in sys.path if d not in first]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromNames(names, mod) if names else loader.loadTestsFromModule(mod)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.skipped:
        sys.stderr.write("\nSKIPPED (not a pass):\n")
        for test, reason in result.skipped:
            sys.stderr.write("  %s: %s\n" % (test.id(), reason))
        return SKIPPED
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: runtest.py TEST_FILE [Class[.test] ...]")
    sys.exit(main(sys.argv[1], sys.argv[2:]))
