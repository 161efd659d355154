#!/usr/bin/python3
"""common/ in layers (docs/ARCHITECTURE.md): base < net = proto < store < engine < host.

A file of common/ may include the headers of its own folder and of lower layers only (net and proto, on the same
rank, not each other's); syncctl (ctl/) talks to the daemons through proto/ and reads ops.db through store/, and
includes nothing of the engine nor the daemon's host (daemon.h, control.h).  On the built objects of
rtopacks_common: no call between two files of common/ goes up a layer, and no two files call each other, directly or
round a loop (no strongly connected component of more than one file in the file call graph).

The call check reads the objects of the build under test (RTOPACKS_BUILD_BIN=<build>/bin, as ctest sets it): a
build it cannot find fails the test, it never passes for want of objects.  Standard library only."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# Folder -> rank: a file may use its own folder and folders of a lower rank.
LAYERS = {"base": 0, "net": 1, "proto": 1, "store": 2, "engine": 3, "host": 4}
# Headers syncctl must not include: the engine's, and the daemon host's (the socket path and the protocol are in
# proto/ctl-proto.h).
CTL_FORBIDDEN_LAYERS = {"engine"}
CTL_FORBIDDEN_HEADERS = {"daemon.h", "control.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def headers(root):
    """Header basename -> layer folder, for common/<layer>/*.h; a name in two folders is an error (includes are
    by basename: every layer folder is on the include path)."""
    found, dups = {}, []
    for path in sorted(glob.glob(os.path.join(root, "common", "*", "*.h"))):
        layer = os.path.basename(os.path.dirname(path))
        name = os.path.basename(path)
        if name in found:
            dups.append("%s is in both common/%s and common/%s" % (name, found[name], layer))
        found[name] = layer
    return found, dups


def includes(path):
    """(line number, header basename) for every #include "x.h" of a file."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                out.append((n, os.path.basename(m.group(1))))
    return out


def may_use(layer, other):
    return layer == other or LAYERS[other] < LAYERS[layer]


def include_violations(root):
    """Every include that breaks the rule, as 'file:line: ...' (paths relative to root)."""
    hdr, bad = headers(root)
    for path in sorted(glob.glob(os.path.join(root, "common", "*", "*.[ch]"))):
        layer = os.path.basename(os.path.dirname(path))
        rel = os.path.relpath(path, root)
        if layer not in LAYERS:
            bad.append("%s: common/%s is not a layer folder (%s)" % (rel, layer, ", ".join(LAYERS)))
            continue
        for n, h in includes(path):
            other = hdr.get(h)
            if other is not None and not may_use(layer, other):
                bad.append("%s:%d: %s/ includes %s of %s/ (%s)" % (rel, n, layer, h, other,
                           "a sibling layer" if LAYERS[other] == LAYERS[layer] else "a higher layer"))
    for path in sorted(glob.glob(os.path.join(root, "ctl", "*.[ch]"))):
        rel = os.path.relpath(path, root)
        for n, h in includes(path):
            if hdr.get(h) in CTL_FORBIDDEN_LAYERS or h in CTL_FORBIDDEN_HEADERS:
                bad.append("%s:%d: syncctl includes %s (%s/): not for syncctl" % (rel, n, h, hdr.get(h)))
    return bad


def object_dir():
    bin_dir = os.environ.get("RTOPACKS_BUILD_BIN")
    if not bin_dir:
        return None, "RTOPACKS_BUILD_BIN is not set (ctest sets it to <build>/bin)"
    d = os.path.join(os.path.dirname(os.path.abspath(bin_dir)), "common", "CMakeFiles", "rtopacks_common.dir")
    if not os.path.isdir(d):
        return None, "no objects of rtopacks_common in %s" % d
    return d, None


def symbols(obj):
    """(defined, undefined) global symbols of an object file."""
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        if f[1] == "U":
            undefined.add(f[0])
        elif f[1] in "TDBRCGSVW":	# upper case: global (lower case: local to the file)
            defined.add(f[0])
    return defined, undefined


def file_graph(objs):
    """{file: (defined, undefined)} -> {file: {file it uses: [symbols]}}."""
    owner = {}
    for name, (defined, _) in objs.items():
        for s in defined:
            owner[s] = name
    graph = {name: {} for name in objs}
    for name, (_, undefined) in objs.items():
        for s in sorted(undefined):
            o = owner.get(s)
            if o is not None and o != name:
                graph[name].setdefault(o, []).append(s)
    return graph


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def layer_of(name):
    head = name.split("/", 1)[0]
    return head if "/" in name and head in LAYERS else None


def call_violations(graph):
    """Calls that go up a layer or across net<->proto, and call cycles between files, as sentences."""
    bad = []
    for a in sorted(graph):
        for b, syms in sorted(graph[a].items()):
            la, lb = layer_of(a), layer_of(b)
            if la and lb and not may_use(la, lb):
                bad.append("common/%s calls up into common/%s (%s): %s" % (a, b, lb, ", ".join(syms)))
    for comp in cycles(graph):
        edges = ["%s -> %s (%s)" % (a, b, ", ".join(graph[a][b])) for a in comp for b in sorted(graph[a]) if b in comp]
        bad.append("call cycle between %s:\n    %s" % (", ".join("common/" + c for c in comp), "\n    ".join(edges)))
    return bad


def load_objects(objdir, root):
    """{<layer>/<file>.c: symbols} for every source of common/ (an object missing for a source is an error);
    objects of generated sources are included under their own names, objects of deleted sources ignored."""
    objs, missing = {}, []
    for src in sorted(glob.glob(os.path.join(root, "common", "*", "*.c"))):
        name = os.path.relpath(src, os.path.join(root, "common"))
        obj = os.path.join(objdir, name + ".o")
        if not os.path.exists(obj):
            missing.append(name)
            continue
        objs[name] = symbols(obj)
    for obj in sorted(glob.glob(os.path.join(objdir, "*.o"))):	# generated: schema_ops.c.o ...
        objs[os.path.basename(obj)[:-2]] = symbols(obj)
    return objs, missing


class LayersTest(unittest.TestCase):
    def test_includes(self):
        bad = include_violations(REPO)
        if bad:
            self.fail("includes against the layers of common/ (docs/ARCHITECTURE.md):\n  " + "\n  ".join(bad))

    def test_calls(self):
        self.assertIsNotNone(shutil.which("nm"), "nm (binutils) is needed to read the objects")
        objdir, why = object_dir()
        self.assertIsNotNone(objdir, why)
        objs, missing = load_objects(objdir, REPO)
        if missing:
            self.fail("sources of common/ without an object in %s (build first): %s" % (objdir, ", ".join(missing)))
        self.assertGreater(len(objs), 20, "too few objects in %s" % objdir)
        graph = file_graph(objs)
        # The graph must be real: host/daemon.c drives the engine.
        self.assertIn("engine/cycle.c", graph.get("host/daemon.c", {}), "the call graph looks empty")
        bad = call_violations(graph)
        if bad:
            self.fail("calls against the layers of common/ (docs/ARCHITECTURE.md):\n  " + "\n  ".join(bad))


class CheckerTest(unittest.TestCase):
    """The checks themselves catch what they are for (a check that cannot fail proves nothing)."""

    def tree(self, files):
        root = tempfile.mkdtemp(prefix="layers-")
        self.addCleanup(shutil.rmtree, root)
        for rel, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        return root

    def test_upward_and_sibling_includes(self):
        root = self.tree({
            "common/base/buf.h": "", "common/net/http.h": "", "common/proto/ctl-proto.h": "",
            "common/store/db.h": "", "common/engine/cycle.h": "", "common/host/daemon.h": "",
            "common/base/buf.c": '#include "buf.h"\n',
            "common/store/db.c": '#include <stdio.h>\n#include "buf.h"\n#include "db.h"\n#include "cycle.h"\n',
            "common/net/http.c": '#include "ctl-proto.h"\n',
            "common/host/daemon.c": '#include "cycle.h"\n#include "db.h"\n',
            "ctl/client.c": '#include "ctl-proto.h"\n#include "daemon.h"\n',
        })
        self.assertEqual(include_violations(root), [
            "common/net/http.c:1: net/ includes ctl-proto.h of proto/ (a sibling layer)",
            "common/store/db.c:4: store/ includes cycle.h of engine/ (a higher layer)",
            "ctl/client.c:2: syncctl includes daemon.h (host/): not for syncctl",
        ])

    def test_cycles_and_upward_calls(self):
        objs = {
            "base/log.c": ({"log_warnx"}, set()),
            "store/db.c": ({"db_open"}, {"log_warnx"}),
            "engine/cycle.c": ({"cycle_new", "crashpoint"}, {"db_open", "daemon_release_ballast"}),
            "store/splitcrash.c": ({"splitcrash_begin"}, {"crashpoint"}),
            "host/daemon.c": ({"daemon_release_ballast", "main_loop"}, {"cycle_new", "monitor_start"}),
            "host/monitor.c": ({"monitor_start"}, {"main_loop"}),
        }
        bad = call_violations(file_graph(objs))
        self.assertEqual(len(bad), 3, bad)
        self.assertIn("common/engine/cycle.c calls up into common/host/daemon.c (host): daemon_release_ballast", bad)
        self.assertIn("common/store/splitcrash.c calls up into common/engine/cycle.c (engine): crashpoint", bad)
        self.assertTrue(bad[2].startswith("call cycle between common/engine/cycle.c, common/host/daemon.c, "
                                          "common/host/monitor.c:"), bad)
        self.assertIn("host/monitor.c -> host/daemon.c (main_loop)", bad[2])

    def test_no_build_is_a_failure(self):
        old = os.environ.pop("RTOPACKS_BUILD_BIN", None)
        try:
            self.assertIsNone(object_dir()[0])
            os.environ["RTOPACKS_BUILD_BIN"] = "/nonexistent/bin"
            self.assertIsNone(object_dir()[0])
        finally:
            if old is None:
                os.environ.pop("RTOPACKS_BUILD_BIN", None)
            else:
                os.environ["RTOPACKS_BUILD_BIN"] = old


if __name__ == "__main__":
    unittest.main(verbosity=2)
