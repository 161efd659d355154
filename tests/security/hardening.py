"""What readelf says about a binary's hardening (used by test_hardening.py and tests/systemd/test_deb.py).

problems(path) lists what is missing: the stack protector (__stack_chk_fail imported), _FORTIFY_SOURCE (some
__*_chk function imported), full RELRO (a GNU_RELRO segment and BIND_NOW, i.e. -z relro -z now), PIE, and an
optimisation level other than -O2 (from the .GCC.command.line section that -frecord-gcc-switches writes: every
compile unit of ours must say -O2, none -O3).
"""

import re
import subprocess


def readelf(*args):
    p = subprocess.run(["readelf", "-W"] + list(args), capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("readelf %s: %s" % (" ".join(args), p.stderr))
    return p.stdout


def problems(path):
    out = []
    syms = set(re.findall(r"(?<![\w@])(__\w+?)(?=@|\s|$)", readelf("--dyn-syms", path), re.M))
    if "__stack_chk_fail" not in syms:
        out.append("no stack protector (__stack_chk_fail is not imported)")
    if not any(s.endswith("_chk") and s != "__stack_chk_fail" for s in syms):
        out.append("no _FORTIFY_SOURCE (no __*_chk function is imported)")
    dyn = readelf("-d", path)
    if not re.search(r"\(FLAGS\)\s+.*\bBIND_NOW\b", dyn) and not re.search(r"\(FLAGS_1\)\s+Flags:.*\bNOW\b", dyn):
        out.append("no BIND_NOW (-z now)")
    if "GNU_RELRO" not in readelf("-l", path):
        out.append("no RELRO (-z relro)")
    if not re.search(r"Type:\s+DYN\b", readelf("-h", path)) or not re.search(r"\(FLAGS_1\)\s+Flags:.*\bPIE\b", dyn):
        out.append("not PIE")
    switches = readelf("-p", ".GCC.command.line", path)
    units = [line for line in switches.splitlines() if re.search(r"\bGNU C\d*\b", line)]
    if not units:
        out.append("no .GCC.command.line section: the optimisation level cannot be checked")
    for line in units:
        levels = set(re.findall(r"(?<!\S)-O(\w*)", line))
        if levels != {"2"}:
            out.append("a compile unit was built with -O%s, not -O2: %s" % ("/-O".join(sorted(levels)) or "0",
                                                                           line.strip()[:200]))
            break
    return out
