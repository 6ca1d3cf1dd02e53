#!/bin/sh
# The layout rule of common/ (docs/design.md "Layout"), run by every build
# (Makefile: build/layout.ok) and by t/test_layout.py:
#   - every source of common/ is in common/core/ or common/io/;
#   - common/core/ (pure: callable anywhere, also on an nginx event loop)
#     includes no header of common/io/ (blocking: threads or startup only)
#     and no system header of files, sockets, processes or threads.
# Usage: t/check_layout.sh [COMMON_DIR]   (default: common/ of this tree)
# Exit 0 when the rule holds, 1 with one line per violation on stderr.

dir="${1:-$(dirname "$0")/../common}"
bad=0

say() {
    echo "layout: $*" >&2
    bad=1
}

[ -d "$dir/core" ] && [ -d "$dir/io" ] || {
    say "$dir/core or $dir/io missing"
    exit 1
}

for f in "$dir"/*; do
    case "$f" in
        "$dir/core"|"$dir/io") ;;
        "$dir/*") ;;                       # empty: nothing matched
        *) say "$f: common/ sources go into core/ (pure) or io/ (blocking)" ;;
    esac
done

# blocking I/O: common/io/ only
sys="fcntl.h unistd.h poll.h sys/poll.h sys/select.h sys/epoll.h sys/socket.h
     netdb.h netinet/in.h spawn.h sys/wait.h pthread.h sys/stat.h
     sys/statvfs.h dirent.h sys/mman.h"
io=""
for h in "$dir"/io/*.h; do
    [ -e "$h" ] && io="$io ${h##*/}"
done

out=$(for f in "$dir"/core/*.c "$dir"/core/*.h; do
    [ -e "$f" ] || continue
    # the name inside <...> or "..." of every #include line
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^>"]*\)[>"].*/\1/p' "$f" |
    while read -r inc; do
        case "$inc" in
            */io/*|io/*)
                echo "$f: #include \"$inc\" (a header of common/io/)" ;;
        esac
        for h in $io; do
            [ "${inc##*/}" = "$h" ] &&
                echo "$f: #include \"$inc\" (a header of common/io/)"
        done
        for h in $sys; do
            [ "$inc" = "$h" ] &&
                echo "$f: #include <$inc> (blocking I/O: common/io/ only)"
        done
    done
done)

if [ -n "$out" ]; then
    printf '%s\n' "$out" | sed 's/^/layout: /' >&2
    bad=1
fi

exit $bad
