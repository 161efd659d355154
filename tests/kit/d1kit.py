"""The fake D1 (tests/fakes/fake_d1.py) as the tests use it: started on a random port with the documented test
account and token, holding a corpus and an ops database; the [d1] config section that points a daemon at it with
test-time limits (retries, backoff and the 429 block in milliseconds to a second, not minutes); a table read back.

Used by tests/foundation/test_d1_client.py and test_d1_mirror.py and the daemons' test_publish.py;
qb-reconcile's test_d1_billing.py can use it too (its own set-up is the same).
"""

import os
import random
import sys
import time

from harness import REPO, Server, ctl, cursor, runs, wait_for

FAKE_D1 = os.path.join(REPO, "tests", "fakes", "fake_d1.py")
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "test-d1-token_0123456789ABCDEFGHIJabcdefghij"

# The test-time limits of a [d1] section: a daemon retries twice, 100ms to 300ms apart, and a 429 blocks it 1s.
LIMITS = {"retries": "2", "backoff": "100ms", "backoff_max": "300ms", "rate_block": "1s"}


def secret(wd, name, value):
    """value in wd's file name, readable by its owner only (as the daemons want their token files); the path."""
    path = wd.file(name)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


def start(wd, corpus, ops, *args):
    """The fake D1 in wd, accepting TOKEN for ACCOUNT, with rtopacks-db=corpus and ops-db=ops (more fake_d1.py
    options in args): its harness.Server, whose token_file is the daemons' token file (wd's "token")."""
    tokens = wd.file("fake-tokens")
    with open(tokens, "w") as f:
        f.write(TOKEN + "\n")
    server = Server(FAKE_D1, "--account-id", ACCOUNT, "--token-file", tokens, "--data-dir", wd.file("d1"),
                    "--database", "rtopacks-db=" + corpus, "--database", "ops-db=" + ops, *args, wd=wd)
    server.token_file = secret(wd, "token", TOKEN)
    return server


def section(server, limits=LIMITS, **keys):
    """The [d1] section for a daemon talking to server (from start()): the account, the API base, the token file,
    limits, then keys (the database ids, other limits; a key given None is left out)."""
    d1 = {"account_id": ACCOUNT, "api_base": server.url + "/client/v4", "token_file": server.token_file}
    d1.update(limits)
    d1.update(keys)
    return {k: v for k, v in d1.items() if v is not None}


def dump(server, table, database="rtopacks-db"):
    """A table of the fake's database as it stands: {"columns": [...], "rows": [[...], ...]}."""
    return server.get("/_fake/dump?database=%s&table=%s" % (database, table))


def publish_torture(tc, env, label, kills=8, window=(0.0, 0.12)):
    """SIGKILL env's daemon (started as a service and triggered) at random moments of its publish phase, up to
    `kills` times, restarting it each time (an unfinished cycle resumes by itself), until the cycle is done; the
    number of kills that landed inside publish (at least one, or the test fails).  The moments are drawn from
    TORTURE_SEED, printed with the count so a failure replays.  The caller then compares D1 with the local tables."""
    seed = int(os.environ.get("TORTURE_SEED", str(int(time.time()))))
    rnd = random.Random(seed)
    st = env.sync_type
    d = env.daemon.start()
    tc.assertTrue(ctl(d.socket_path(), "trigger")["ok"])
    landed = 0
    for i in range(kills):
        wait_for(lambda: cursor(env.ops, st)["cycle_phase"] in ("publish", "notify", "done"), timeout=120,
                 interval=0.01, what="the publish phase (seed %d, kill %d)" % (seed, i))
        if cursor(env.ops, st)["cycle_phase"] != "publish":
            break
        time.sleep(rnd.uniform(*window))
        d.kill()
        landed += cursor(env.ops, st)["cycle_phase"] == "publish"
        d.start()
    wait_for(lambda: cursor(env.ops, st)["cycle_phase"] == "done", timeout=180,
             what="the resumed cycle (seed %d)" % seed)
    wait_for(lambda: runs(env.ops, st)[-1]["status"] == "complete", what="the run row")
    tc.assertEqual(d.stop(), 0)
    sys.stderr.write("%s publish torture: %d kills landed in publish (seed %d)\n" % (label, landed, seed))
    tc.assertGreater(landed, 0, "no kill landed inside publish (seed %d)" % seed)
    tc.assertEqual(runs(env.ops, st)[-1]["trigger"], "resume")
    return landed, seed
