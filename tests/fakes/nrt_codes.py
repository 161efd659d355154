"""Codes of the synthetic National Register of VET shared by every fake upstream.

The fake TGA servers (SOAP and REST) serve a register built on these codes, and the fake CKAN server uses the
qualification codes as CRICOS "VET National Code" values, so that a CRICOS course links to a TGA component.
Everything here is deterministic for a given (scale, seed): tests depend on it, so keep the outputs stable.

Code shapes follow the real register (see ../shared/reference/tga-web-services.md and cricos-data.md):
  training package  BSB                 (3 letters)
  qualification     BSB40920            (package, AQF level digit, 2-digit sequence, 2-digit year)
  unit              BSBOPS404           (package, 3-letter field, 3 digits)
  skill set         BSBSS00094          (package, "SS", 5 digits)
  accredited course 10926NAT            (5 digits, NAT or VIC)
  RTO               0275, 45678         (4 or 5 digits)
"""

import random
import string

# Real training package codes (a subset of the current NRT); the full scale uses all of them.
PACKAGES = [
    "ACM", "AHC", "AMP", "AUM", "AUR", "AVI", "BSB", "CHC", "CPC", "CPP", "CSC", "CUA", "DEF", "FBP",
    "FNS", "FWP", "HLT", "ICP", "ICT", "LGA", "MAR", "MEA", "MEM", "MSF", "MSL", "MSM", "MSS", "MST",
    "PMA", "PMB", "PMC", "PPM", "PSP", "PUA", "RGR", "RII", "SFI", "SHB", "SIR", "SIS", "SIT", "TAE",
    "TLI", "UEE", "UEG", "UEP", "UET", "UEW", "UPP", "MAR", "NWP", "RTD", "SFL", "ACU", "AMX", "BSA",
    "CHM", "CUE", "FDF", "HLR",
]

SCALES = {
    # name: (packages, qualifications, units, skill sets, accredited courses, RTOs)
    "small": (4, 40, 300, 12, 4, 60),
    "full": (60, 8000, 75000, 1200, 600, 12500),
}

_FIELD_LETTERS = string.ascii_uppercase


def _packages(n):
    seen, out = set(), []
    for code in PACKAGES:
        if code not in seen:
            seen.add(code)
            out.append(code)
    # The list above has 58 distinct codes; synthesise the rest deterministically.
    i = 0
    while len(out) < n:
        code = "Z" + _FIELD_LETTERS[i // 26 % 26] + _FIELD_LETTERS[i % 26]
        i += 1
        if code not in seen:
            seen.add(code)
            out.append(code)
    return out[:n]


def register_codes(scale="small", seed=1):
    """Return {"packages", "qualifications", "units", "skill_sets", "accredited", "rtos"}: sorted code lists."""
    if scale not in SCALES:
        raise ValueError("unknown scale %r (expected one of %s)" % (scale, ", ".join(SCALES)))
    n_tp, n_qual, n_unit, n_ss, n_acc, n_rto = SCALES[scale]
    rnd = random.Random("nrt-codes/%s/%d" % (scale, seed))
    packages = _packages(n_tp)

    quals = set()
    while len(quals) < n_qual:
        tp = packages[len(quals) % n_tp]
        quals.add("%s%d%02d%02d" % (tp, rnd.randint(1, 8), rnd.randint(1, 99), rnd.choice((15, 16, 18, 19, 20, 21, 22, 23, 24, 25))))

    units = set()
    fields = {tp: ["".join(rnd.choice(_FIELD_LETTERS) for _ in range(3)) for _ in range(12)] for tp in packages}
    while len(units) < n_unit:
        tp = packages[len(units) % n_tp]
        units.add("%s%s%03d" % (tp, rnd.choice(fields[tp]), rnd.randint(1, 999)))

    skill_sets = set()
    while len(skill_sets) < n_ss:
        tp = packages[len(skill_sets) % n_tp]
        skill_sets.add("%sSS%05d" % (tp, rnd.randint(1, 99999)))

    accredited = set()
    while len(accredited) < n_acc:
        accredited.add("%05d%s" % (rnd.randint(10000, 22999), rnd.choice(("NAT", "VIC"))))

    rtos = set()
    while len(rtos) < n_rto:
        n = rnd.randint(1, 52999)
        rtos.add("%04d" % n)

    return {
        "packages": sorted(packages),
        "qualifications": sorted(quals),
        "units": sorted(units),
        "skill_sets": sorted(skill_sets),
        "accredited": sorted(accredited),
        "rtos": sorted(rtos),
    }


if __name__ == "__main__":
    import json
    import sys

    scale = sys.argv[1] if len(sys.argv) > 1 else "small"
    codes = register_codes(scale)
    print(json.dumps({k: (len(v), v[:5]) for k, v in codes.items()}, indent=1))
