#!/bin/sh
# Runs the official nginx-acme module's own test suite (Perl, nginx-tests
# harness, pebble) against our nginx module and prints
#   nginx-acme suite: N passed, N failed, N skipped
# (subtests).  Not part of CI: the two repositories come from outside.
#
# usage: t/peer/nginx-acme.sh NGINX_ACME NGINX_TESTS [FILE.t ...]
#   NGINX_ACME   a checkout (or a bare git directory) of nginx/nginx-acme
#   NGINX_TESTS  a checkout (or a bare git directory) of nginx/nginx-tests
#   FILE.t       only these files of nginx-acme's t/ (default: all)
# environment:
#   PEBBLE_VERSION  what the pebble shim answers to -version (default 2.4.0,
#                   Debian's; 2.5.2 opens the EAB file, see issue 11)
#   KEEP=1          keep the work directory (the tests' logs)
#
# The two shims, both outside our code:
#   - nginx -V lists dynamic modules Debian does not install: the shim strips
#     "=dynamic" options, so the harness adds no load_module for them;
#   - Debian's pebble has no -version flag: the shim answers PEBBLE_VERSION.
# Everything runs in its own network namespace (unshare -n): loopback only,
# the suite's fixed ports collide with nothing else.
#
# Needs: ./build.sh build (build/nginx/ngx_http_acme_module.so), nginx,
# pebble, prove, libio-socket-ssl-perl.

set -eu

[ $# -ge 2 ] || { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

here=$(cd "$(dirname "$0")/../.." && pwd)
so="$here/build/nginx/ngx_http_acme_module.so"
acme_src=$1
tests_src=$2
shift 2

[ -f "$so" ] || { echo "no $so: run ./build.sh build first" >&2; exit 2; }
perl -MIO::Socket::SSL -e1 2>/dev/null \
    || { echo "needs IO::Socket::SSL: apt-get install libio-socket-ssl-perl" >&2; exit 2; }

work=$(mktemp -d /tmp/nginx-acme-suite.XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT

# a checkout as it is, a bare git directory through git archive
tree() {
    if [ -d "$1/$2" ]; then
        echo "$1"
    else
        mkdir -p "$work/$3"
        git --git-dir="$1" archive HEAD | tar -x -C "$work/$3"
        echo "$work/$3"
    fi
}

acme=$(tree "$acme_src" t nginx-acme)
tests=$(tree "$tests_src" lib nginx-tests)
rev=$(git --git-dir="$acme_src" rev-parse --short HEAD 2>/dev/null \
      || git -C "$acme_src" rev-parse --short HEAD 2>/dev/null || echo unknown)

mkdir -p "$work/bin"
cat > "$work/bin/nginx" <<SHIM
#!/bin/sh
if [ "\$1" = "-V" ]; then
    /usr/sbin/nginx -V 2>&1 | sed 's/ --with-[a-z_0-9]*=dynamic//g; s/ --add-dynamic-module=[^ ]*//g' >&2
    exit 0
fi
exec /usr/sbin/nginx "\$@"
SHIM
cat > "$work/bin/pebble" <<SHIM
#!/bin/sh
if [ "\$1" = "-version" ]; then
    echo "pebble version: v${PEBBLE_VERSION:-2.4.0}"
    exit 0
fi
exec /usr/bin/pebble "\$@"
SHIM
chmod 755 "$work/bin/nginx" "$work/bin/pebble"

if [ $# -eq 0 ]; then
    set -- $(cd "$acme/t" && ls *.t)
fi

# nginx runs as root here: its workers as root too, so that they write the
# harness's 0700 test directories (the harness expects an unprivileged user)
export TEST_NGINX_BINARY="$work/bin/nginx"
export TEST_NGINX_PEBBLE_BINARY="$work/bin/pebble"
export TEST_NGINX_GLOBALS="load_module $so; user root;"
export PERL5LIB="$tests/lib"
[ "${KEEP:-}" = 1 ] && export TEST_NGINX_LEAVE=1

cd "$acme/t"
unshare -n sh -c 'ip link set lo up; for f; do echo "### $f"; timeout 600 perl "$f" 2>&1; done' \
    sh "$@" > "$work/tap.txt" 2>&1 || true

awk -v rev="$rev" '
function close_file() {
    # a file that died before its plan: the rest are failures
    if (file != "" && plan > ran) {
        f += plan - ran
        print "FAILED " file ": " plan - ran " subtests not run (died)"
    }
}
/^### / { close_file(); file = $2; plan = 0; ran = 0; next }
/^1\.\.[0-9]+$/ { plan = substr($0, 4) + 0; next }
/^ok [0-9]+/ { ran++; if ($0 ~ /# (skip|SKIP)/) s++; else p++; next }
/^not ok [0-9]+/ {
    ran++
    if ($0 ~ /# (TODO|todo)/) { s++; next }
    f++; print "FAILED " file ": " $0; next
}
/^1\.\.0 # (SKIP|skip)/ { print "skipped " file ":" substr($0, 5); next }
/ at .* line [0-9]+\.$/ { print file ": " $0 }
END {
    close_file()
    printf "nginx-acme %s suite: %d passed, %d failed, %d skipped\n", rev, p, f, s
}
' "$work/tap.txt"
[ "${KEEP:-}" = 1 ] && echo "work directory: $work"
exit 0
