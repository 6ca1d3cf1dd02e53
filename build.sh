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
# etcd-server + etcd-client: the shared store's tests
PACKAGES=(nginx nginx-dev apache2 apache2-dev libssl-dev libjansson-dev pebble
          python3-pytest python3-cryptography bind9 bind9-utils bind9-dnsutils curl make gcc
          libpcre2-dev zlib1g-dev iproute2 util-linux clang libclang-rt-14-dev llvm libasan8
          prometheus chromium tinyproxy etcd-server etcd-client)

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
    test-asan) deps; build; build_asan; run_tests_asan "$@" ;;
    demo)   deps; build; exec "$PY" "$REPO/t/integration/demo.py" "${@:-nginx}" ;;
    bench)  deps; build
            case "${1:-}" in
                apache) shift; exec "$REPO/bench/handshake-apache.sh" "$@" ;;
                nginx)  shift; exec "$REPO/bench/handshake.sh" "$@" ;;
                *)      exec "$REPO/bench/handshake.sh" "$@" ;;
            esac ;;
    *)      echo "usage: $0 [deps|build|test|asan|test-asan|demo [nginx|apache]|bench [nginx|apache]]" >&2; exit 2 ;;
esac
