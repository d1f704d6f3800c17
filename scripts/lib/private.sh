# shellcheck shell=bash
# A private copy of PostgreSQL's installation holding a queue.so built from
# a given source tree, for scripts/valgrind.sh (PRIVATE=1, UBSAN=1) and
# bench/ab.sh.  Source it (after scripts/lib/cluster.sh, which sets PG_BIN),
# then:
#
#     private_install <root> <source dir> <build log> [make arguments...]
#
# copies PostgreSQL's bin, lib and share dirs under <root> (postgres finds
# its lib and share dirs relative to its bin dir), builds the extension from
# <source dir> (its Makefile, queue.control and src) in <root>.build, and
# puts it into the copy with "make install DESTDIR=<root>"; nothing of the
# system's installation changes, and nothing there can change under a run.
# PRIVATE_BIN is then the copy's bin dir.

PRIVATE_BIN=

private_install() {
    local root=$1 src=$2 log=$3 sys_config="$PG_BIN/pg_config" d dir
    shift 3
    for d in bindir pkglibdir sharedir; do
        dir=$("$sys_config" --$d)
        mkdir -p "$root$(dirname "$dir")"
        cp -a "$dir" "$root$dir"
    done
    rm -f "$root$("$sys_config" --pkglibdir)/queue.so" "$root$("$sys_config" --sharedir)/extension/queue"*
    mkdir -p "$root.build"
    tar -C "$src" --exclude="*.o" --exclude="*.so" --exclude="*.bc" -cf - Makefile queue.control src |
        tar -C "$root.build" -xf -
    { make -C "$root.build" -s PG_CONFIG="$sys_config" "$@" &&
      make -C "$root.build" -s PG_CONFIG="$sys_config" "$@" install DESTDIR="$root"; } >"$log" 2>&1 ||
        { cat "$log" >&2; return 1; }
    PRIVATE_BIN="$root$("$sys_config" --bindir)"
}
