#!/bin/bash
# The challenge table's find and remove + add times at the size nginx zones of
# 1m, 32m and 256m give it (bench/chal_table.c).  Needs ./build.sh build (the
# core library).  --old REV also builds the table of git revision REV (its
# acme_chal_table.[ch]) and runs it first (before/after in one run).
#
#   bench/chal_table.sh [--old REV] [ZONE_BYTES...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
old=""
if [ "${1:-}" = "--old" ]; then
    old="$2"
    shift 2
fi
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(1048576 33554432 268435456)
out=build/bench
mkdir -p "$out"
CFLAGS=(-O2 -std=c11 -D_GNU_SOURCE)
LIBS=(build/libacmecore.a -lssl -lcrypto -ljansson -lpthread)
cc "${CFLAGS[@]}" -Icommon/core -o "$out/chal_table" bench/chal_table.c \
    common/core/acme_chal_table.c "${LIBS[@]}"
if [ -n "$old" ]; then
    rm -rf "$out/chal_table_old.src"
    mkdir -p "$out/chal_table_old.src"
    git show "$old:common/core/acme_chal_table.c" > "$out/chal_table_old.src/acme_chal_table.c"
    git show "$old:common/core/acme_chal_table.h" > "$out/chal_table_old.src/acme_chal_table.h"
    cc "${CFLAGS[@]}" -I"$out/chal_table_old.src" -Icommon/core -o "$out/chal_table_old" \
        bench/chal_table.c "$out/chal_table_old.src/acme_chal_table.c" "${LIBS[@]}"
fi
for s in "${sizes[@]}"; do
    if [ -n "$old" ]; then
        printf 'old: '
        "$out/chal_table_old" "$s" 20000
    fi
    "$out/chal_table" "$s"
done
