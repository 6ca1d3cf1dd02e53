"""Sanitizers and fuzzing (fuzz/README.md): the C unit tests built with
AddressSanitizer + UndefinedBehaviorSanitizer (build/san/unit_tests), and
every libFuzzer target of fuzz/ (build/fuzz/fuzz_*) over its committed
corpus (fuzz/corpus/<target>/, regression inputs included) plus a short
bounded run.  Built by `./build.sh build` (`make san`).

ACME_FUZZ_SECONDS (default 3) sets the bounded run of each target; the
runs of the selected cases go on in parallel, one per core (at most 4),
while the cases wait for their own.
"""

import base64
import concurrent.futures
import glob
import os
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ASAN_UNIT = os.path.join(REPO, "build", "san", "unit_tests")
FUZZ_SECONDS = int(os.environ.get("ACME_FUZZ_SECONDS", "3"))
# an upper bound on the executions besides the time (fast targets do
# ~100k/s alone; this keeps a run at seconds even then)
FUZZ_RUNS = 300000

TARGETS = sorted(os.path.basename(p)[:-2]
                 for p in glob.glob(os.path.join(REPO, "fuzz", "fuzz_*.c")))

SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:symbolize=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def _env():
    env = dict(os.environ)
    env.update(SAN_ENV)
    return env


def _tail(text, n=6000):
    return text[-n:] if len(text) > n else text


def _run_target(name, workdir):
    """One target: the corpus, then FUZZ_SECONDS of fuzzing.  Returns
    (returncode, output, artifacts)."""
    binary = os.path.join(REPO, "build", "fuzz", name)
    corpus = os.path.join(REPO, "fuzz", "corpus", name)
    if not os.access(binary, os.X_OK):
        return None, "%s missing: run ./build.sh build" % binary, []
    if not os.path.isdir(corpus) or not os.listdir(corpus):
        return None, "no seed corpus in %s" % corpus, []
    new = os.path.join(workdir, "new")          # what the run adds: not the repo
    art = os.path.join(workdir, "artifacts")
    os.makedirs(new, exist_ok=True)
    os.makedirs(art, exist_ok=True)
    cmd = [binary, "-max_total_time=%d" % FUZZ_SECONDS, "-runs=%d" % FUZZ_RUNS,
           "-timeout=20", "-rss_limit_mb=2048", "-print_final_stats=1",
           "-artifact_prefix=%s/" % art, new, corpus]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=FUZZ_SECONDS + 120, env=_env(), cwd=workdir)
        rc, out = r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc = "timeout"
        out = (e.stdout or b"").decode(errors="replace")
    arts = sorted(glob.glob(os.path.join(art, "*")))
    return rc, " ".join(cmd) + "\n" + out, arts


def _run_asan_unit(workdir):
    """All C unit tests in one process: (returncode, output)."""
    if not os.access(ASAN_UNIT, os.X_OK):
        return None, "%s missing: run ./build.sh build" % ASAN_UNIT
    r = subprocess.run([ASAN_UNIT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600, cwd=REPO, env=_env())
    return r.returncode, r.stdout.decode(errors="replace")


@pytest.fixture(scope="module")
def jobs(request, tmp_path_factory):
    """Starts every selected case's run at once, one per core (at most 4):
    the cases then wait for their own result."""
    wanted = []
    for item in request.session.items:
        if item.module.__name__ != __name__:
            continue
        cs = getattr(item, "callspec", None)
        if cs and "target" in cs.params:
            wanted.append(cs.params["target"])
        elif item.name == "test_unit_tests_asan_ubsan":
            wanted.insert(0, "unit")            # the longest: first
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
    futures = {}
    for t in wanted:
        wd = str(tmp_path_factory.mktemp(t))
        futures[t] = pool.submit(_run_asan_unit, wd) if t == "unit" \
            else pool.submit(_run_target, t, wd)
    yield futures
    pool.shutdown(wait=True)


def test_unit_tests_asan_ubsan(jobs):
    """Every C unit test in one process built with -fsanitize=address,undefined
    (-fno-sanitize-recover=all, leak detection on): any report fails it."""
    rc, out = jobs["unit"].result()
    assert rc is not None, out
    assert rc == 0, "unit tests under ASan/UBSan exited %d:\n%s" % (rc, _tail(out))
    assert " 0 failed" in out and "Sanitizer" not in out, _tail(out)


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(target, jobs):
    """The target's corpus (seeds and regression inputs), then a bounded
    run; a crash, leak, sanitizer report or timeout fails it and shows the
    input, which belongs in fuzz/corpus/<target>/ once fixed."""
    assert TARGETS, "no fuzz/fuzz_*.c"
    rc, out, arts = jobs[target].result()
    assert rc is not None, out
    if rc != 0 or arts:
        shown = []
        for a in arts[:3]:
            with open(a, "rb") as f:
                data = f.read(4096)
            shown.append("%s (base64): %s" % (a, base64.b64encode(data).decode()))
        pytest.fail("%s exited %s\n%s\n%s" % (target, rc, "\n".join(shown), _tail(out)))
    # the corpus really ran, then the fuzzing
    assert "INITED" in out, _tail(out)
    assert "Done " in out, _tail(out)
