#!/bin/bash
# ngx_acme / mod_acme_auto: dependencies, build, tests, demo.
#
#   ./build.sh deps              install the Debian packages needed (idempotent)
#   ./build.sh [build]           common/ + unit tests, the nginx module, the Apache module
#   ./build.sh test [pytest args]  deps + build + the whole suite (t/) in parallel
#                                shards, or one pytest over t/ with the given arguments
#   ./build.sh demo [nginx|apache] deps + build + a live demo against pebble on loopback
#   ./build.sh bench [nginx|apache]  deps + build + bench/handshake.sh (-apache.sh)
#   ./build.sh asan              both modules built with AddressSanitizer (build/asan/)
#   ./build.sh test-asan [pytest args]  deps + build + asan + the suite (with args:
#                                t/integration) on those modules (README "Testing under
#                                AddressSanitizer")
#   ./build.sh package           deps + the Debian packages libnginx-mod-http-acme and
#                                libapache2-mod-acme-auto (debian/, dpkg-buildpackage on a
#                                copy of the tree) + lintian -> build/package/*.deb
#                                (ACME_PACKAGE_LINTIAN=no: without lintian, which is slow;
#                                ACME_PACKAGE_PREBUILT=build: the modules ./build.sh build made)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$REPO"
PY=/usr/bin/python3
JOBS="$(nproc 2>/dev/null || echo 2)"

# libpcre2-dev and zlib1g-dev: nginx's configure (module build) checks them;
# python3-cryptography: certificate inspection in the tests;
# clang + libclang-rt-14-dev (libFuzzer, ASan and UBSan runtimes) + llvm
# (llvm-symbolizer for readable reports): fuzz targets and sanitizer builds;
# libasan8: gcc's ASan runtime, preloaded into the servers by ./build.sh test-asan
# prometheus (promtool check metrics) and chromium (headless, the HTML status
# view): the status views' tests; tinyproxy: the outbound proxy's tests;
# etcd-server + etcd-client: the shared store's tests;
# debhelper, dpkg-dev, fakeroot, lintian: ./build.sh package (dh_nginx comes
# with nginx-dev, dh_apache2 with apache2-dev); valgrind: the instruction
# counts of bench/handshake-apache.sh --instructions
PACKAGES=(nginx nginx-dev apache2 apache2-dev libssl-dev libjansson-dev pebble
          python3-pytest python3-cryptography bind9 bind9-utils bind9-dnsutils curl make gcc
          libpcre2-dev zlib1g-dev iproute2 util-linux clang libclang-rt-14-dev llvm libasan8
          prometheus chromium tinyproxy etcd-server etcd-client debhelper dpkg-dev fakeroot
          lintian valgrind)

log() { printf '==> %s\n' "$*" >&2; }

deps() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "deps: all installed"
        return 0
    fi
    log "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build_core() {
    log "build: common/ + unit tests"
    make -j"$JOBS"
    log "build: unit tests under ASan+UBSan, fuzz targets (clang)"
    make -j"$JOBS" san
}

# nginx dynamic module, as in docs/design.md "Build": Debian's nginx sources
# (configure only) + its conf_flags + our config; reconfigured only when the
# set of sources or the config changes.  build_nginx [DIR [configure args]]:
# another build directory (build/DIR) with more configure arguments.
build_nginx() {
    local dir="${1:-}" extra=("${@:2}")
    local src="$REPO/build/${dir:+$dir/}nginx-src" out="$REPO/build/${dir:+$dir/}nginx"
    local stamp="$src/.acme-config-stamp" want
    want="$(cd "$REPO" && { cat config; ls common/core/*.c common/io/*.c ngx_acme/*.c ngx_acme/*.h 2>/dev/null; echo "${extra[*]}"; } | md5sum | cut -d' ' -f1)"
    if [ ! -f "$src/objs/Makefile" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "build: configuring nginx module"
        rm -rf "$src"
        mkdir -p "$(dirname "$src")"
        cp -a /usr/share/nginx/src "$src"
        # shellcheck disable=SC1091
        . "$src/conf_flags"
        (cd "$src" && ./configure "${NGX_CONF_FLAGS[@]}" "${extra[@]}" --add-dynamic-module="$REPO" \
            > "$REPO/build/nginx-configure.log" 2>&1) || {
            tail -30 "$REPO/build/nginx-configure.log" >&2
            log "build: nginx configure failed (build/nginx-configure.log)"
            return 1
        }
        echo "$want" > "$stamp"
    fi
    log "build: nginx module"
    make -C "$src" -f objs/Makefile -j"$JOBS" modules
    mkdir -p "$out"
    cp "$src/objs/ngx_http_acme_module.so" "$out/ngx_http_acme_module.so.tmp"
    mv -f "$out/ngx_http_acme_module.so.tmp" "$out/ngx_http_acme_module.so"
    log "build: $out/ngx_http_acme_module.so"
}

build_apache() {
    if [ -f "$REPO/mod_acme_auto/Makefile" ]; then
        log "build: Apache module"
        make -C "$REPO/mod_acme_auto"
    else
        log "build: mod_acme_auto/Makefile missing, Apache module skipped"
    fi
}

build() {
    build_core
    build_nginx
    build_apache
}

# Both modules with AddressSanitizer (gcc's, as the servers' own builds), for
# running the integration suite on them with the runtime preloaded into the
# uninstrumented Debian binaries: build/asan/nginx/ngx_http_acme_module.so,
# build/asan/apache/mod_acme_auto.so.
ASAN_CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1"
ASAN_RUNTIME=/usr/lib/x86_64-linux-gnu/libasan.so.8

build_asan() {
    log "build: nginx module with AddressSanitizer"
    build_nginx asan --with-cc-opt="$ASAN_CFLAGS" --with-ld-opt="-fsanitize=address"
    log "build: Apache module with AddressSanitizer"
    make -C "$REPO/mod_acme_auto" OUT="$REPO/build/asan/apache" \
        EXTRA_APXS="$(printf -- '-Wc,%s ' $ASAN_CFLAGS) -Wl,-fsanitize=address"
}

# The modules of the Debian packages (debian/rules: dh_auto_build), with
# Debian's build flags (hardening): build/deb/nginx/ngx_http_acme_module.so,
# build/deb/apache/mod_acme_auto.so.  ACME_PACKAGE_PREBUILT=DIR takes
# DIR/nginx/ngx_http_acme_module.so and DIR/apache/mod_acme_auto.so (what
# ./build.sh build made) instead of compiling again (test_packages.py).
build_deb_modules() {
    local cflags cppflags ldflags f apxs=() pre="${ACME_PACKAGE_PREBUILT:-}"
    if [ -n "$pre" ]; then
        log "build: the package's modules from $pre (ACME_PACKAGE_PREBUILT)"
        mkdir -p "$REPO/build/deb/nginx" "$REPO/build/deb/apache"
        cp "$pre/nginx/ngx_http_acme_module.so" "$REPO/build/deb/nginx/"
        cp "$pre/apache/mod_acme_auto.so" "$REPO/build/deb/apache/"
        touch "$REPO/build/deb/prebuilt"
        return 0
    fi
    # after a prebuilt run, make would take the copied file as up to date
    if [ -e "$REPO/build/deb/prebuilt" ]; then
        rm -f "$REPO/build/deb/apache/mod_acme_auto.so" "$REPO/build/deb/prebuilt"
    fi
    cflags="$(dpkg-buildflags --get CFLAGS)"
    cppflags="$(dpkg-buildflags --get CPPFLAGS)"
    ldflags="$(dpkg-buildflags --get LDFLAGS)"
    log "build: nginx module for the package"
    build_nginx deb --with-cc-opt="$cflags $cppflags -fPIC" --with-ld-opt="$ldflags -fPIC"
    # apxs already compiles with Debian's CFLAGS and links with relro/now
    for f in $cppflags; do apxs+=("-Wc,$f"); done
    log "build: Apache module for the package"
    make -C "$REPO/mod_acme_auto" OUT="$REPO/build/deb/apache" EXTRA_APXS="${apxs[*]}"
}

# Both package modules load into the servers (debian/rules: dh_auto_test).
check_deb_modules() {
    local d
    d="$(mktemp -d)"
    printf 'load_module %s;\nevents {}\n' "$REPO/build/deb/nginx/ngx_http_acme_module.so" \
        > "$d/nginx.conf"
    /usr/sbin/nginx -g "error_log /dev/null; pid $d/nginx.pid;" -t -q -c "$d/nginx.conf" || {
        rm -rf "$d"; log "check: nginx does not load the module"; return 1; }
    cat > "$d/apache2.conf" <<EOF
ServerRoot /etc/apache2
DefaultRuntimeDir $d
PidFile $d/apache2.pid
ErrorLog $d/error.log
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
LoadModule acme_auto_module $REPO/build/deb/apache/mod_acme_auto.so
EOF
    /usr/sbin/apache2 -d "$d" -f "$d/apache2.conf" -t || {
        rm -rf "$d"; log "check: apache2 does not load the module"; return 1; }
    rm -rf "$d"
}

# ./build.sh package: dpkg-buildpackage on a copy of the tree (its outputs
# go to the parent directory: build/package/), then lintian.  The copy's
# build/deb stays between runs, so an unchanged tree is not compiled again.
package() {
    local out="$REPO/build/package" src="$REPO/build/package/src" f
    if [ -n "${ACME_PACKAGE_PREBUILT:-}" ]; then      # relative: to the repository
        ACME_PACKAGE_PREBUILT="$(cd "$ACME_PACKAGE_PREBUILT" && pwd)"
        export ACME_PACKAGE_PREBUILT
    fi
    mkdir -p "$src"
    find "$out" -mindepth 1 -maxdepth 1 ! -name src -exec rm -rf {} +
    find "$src" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
    (cd "$REPO" && tar --exclude=./build --exclude=./.git --exclude=__pycache__ -cf - .) |
        tar -C "$src" -xf -
    log "package: dpkg-buildpackage -b (log: build/package/build.log)"
    (cd "$src" && dpkg-buildpackage -b -us -uc) > "$out/build.log" 2>&1 || {
        tail -40 "$out/build.log" >&2
        log "package: dpkg-buildpackage failed (build/package/build.log)"
        return 1
    }
    if [ "${ACME_PACKAGE_LINTIAN:-yes}" = no ]; then
        log "package: lintian skipped (ACME_PACKAGE_LINTIAN=no)"
        for f in "$out"/*.deb; do log "package: $f"; done
        return 0
    fi
    log "package: lintian"
    if ! lintian --fail-on error --info "$out"/*.changes > "$out/lintian.log" 2>&1; then
        cat "$out/lintian.log" >&2
        log "package: lintian found errors (build/package/lintian.log)"
        return 1
    fi
    cat "$out/lintian.log" >&2
    for f in "$out"/*.deb; do log "package: $f"; done
}

run_tests_asan() {
    [ -r "$ASAN_RUNTIME" ] || { log "test-asan: $ASAN_RUNTIME missing (libasan8)"; exit 1; }
    export ACME_NGINX_MODULE="$REPO/build/asan/nginx/ngx_http_acme_module.so"
    export ACME_NGINX_LD_PRELOAD="$ASAN_RUNTIME"
    export ACME_APACHE_MODULE="$REPO/build/asan/apache/mod_acme_auto.so"
    export ACME_APACHE_LD_PRELOAD="$ASAN_RUNTIME"
    if [ $# -gt 0 ]; then
        log "test-asan: pytest $* on the AddressSanitizer modules"
        exec "$PY" -m pytest -v -p no:cacheprovider "$REPO/t/integration" "$@"
    fi
    log "test-asan: the whole suite in parallel shards on the AddressSanitizer modules"
    exec "$PY" "$REPO/t/run_shards.py"
}

run_tests() {
    if [ $# -gt 0 ]; then
        log "test: pytest $*"
        exec "$PY" -m pytest -v -p no:cacheprovider "$REPO/t" "$@"
    fi
    # the whole suite: parallel shards, each in its own network namespace;
    # the last line is the sum, "total: N passed, N failed, N skipped"
    log "test: pytest in parallel shards (t/run_shards.py)"
    exec "$PY" "$REPO/t/run_shards.py"
}

cmd="${1:-build}"
[ $# -gt 0 ] && shift
case "$cmd" in
    deps)   deps ;;
    build)  build ;;
    test)   deps; build; run_tests "$@" ;;
    asan)   build_asan ;;
    package) deps; package ;;
    deb-modules) build_deb_modules ;;             # debian/rules
    deb-modules-check) check_deb_modules ;;       # debian/rules
    test-asan) deps; build; build_asan; run_tests_asan "$@" ;;
    demo)   deps; build; exec "$PY" "$REPO/t/integration/demo.py" "${@:-nginx}" ;;
    bench)  deps; build
            case "${1:-}" in
                apache) shift; exec "$REPO/bench/handshake-apache.sh" "$@" ;;
                nginx)  shift; exec "$REPO/bench/handshake.sh" "$@" ;;
                *)      exec "$REPO/bench/handshake.sh" "$@" ;;
            esac ;;
    *)      echo "usage: $0 [deps|build|test|asan|test-asan|package|demo [nginx|apache]|bench [nginx|apache]]" >&2; exit 2 ;;
esac
