#!/usr/bin/python3
"""How ctest runs one Python test file: its unittest tests (verbosity 2, as the files' own main does), exiting
  0   every test passed,
  77  they passed but some were skipped (ctest's SKIP_RETURN_CODE: the summary lists the file as skipped, with
      the reasons printed here, instead of counting it as a pass),
  1   a test failed or raised.
Run a file directly (/usr/bin/python3 tests/.../test_x.py) to get plain unittest behaviour."""

import importlib.util
import os
import sys
import unittest

SKIPPED = 77


def main(path):
    name = os.path.splitext(os.path.basename(path))[0]
    # As `python3 FILE` does: the file's own folder comes first on the import path (its helper modules live there).
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.loadTestsFromModule(mod))
    if not result.wasSuccessful():
        return 1
    if result.skipped:
        sys.stderr.write("\nSKIPPED (not a pass):\n")
        for test, reason in result.skipped:
            sys.stderr.write("  %s: %s\n" % (test.id(), reason))
        return SKIPPED
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: runtest.py TEST_FILE")
    sys.exit(main(sys.argv[1]))
