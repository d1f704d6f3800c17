#!/usr/bin/env bash
# Runs every test of the extension: pg_regress suites, isolation specs,
# TAP tests and pgTAP tests.  On a fresh Debian 12 machine, as root:
#
#     bash scripts/test.sh            # everything
#     bash scripts/test.sh regress    # or: isolation, tap, pgtap (any of them)
#
# PostgreSQL refuses to run as root, so the tests run as the ordinary user
# "postgres" in a private copy of the tree (the clone may belong to root),
# each suite on private servers it starts itself on free ports.  Exits
# non-zero when any test fails, after printing the differences.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(regress isolation pgtap tap)

PG_MAJOR=${PG_MAJOR:-15}
TEST_USER=${TEST_USER:-postgres}
if [ "$(id -u)" = 0 ]; then
    bash scripts/setup.sh
    run_as() { runuser -u "$TEST_USER" -- "$@"; }
else
    run_as() { "$@"; }
fi
export PATH="/usr/lib/postgresql/$PG_MAJOR/bin:$PATH"

work=$(mktemp -d /tmp/queue-test.XXXXXX)
# KEEP_WORK=1 keeps the copy (results/, output_iso/, tmp_check/) for a look.
if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "test: working copy kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi
tar -C "$here" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude=results \
    --exclude=tmp_check --exclude=tmp_check_iso --exclude=output_iso -cf - . | tar -C "$work" -xf -
[ "$(id -u)" = 0 ] && chown -R "$TEST_USER" "$work"

status=0
for suite in "${suites[@]}"; do
    case "$suite" in
        regress)   target=(installcheck ISOLATION= TAP_TESTS=) ;;
        isolation) target=(installcheck REGRESS= TAP_TESTS=) ;;
        tap)       target=(installcheck REGRESS= ISOLATION=) ;;
        pgtap)     target=(installcheck-pgtap) ;;
        *) echo "unknown suite: $suite (use regress, isolation, tap, pgtap)" >&2; exit 2 ;;
    esac
    echo "=== $suite"
    if ! (cd "$work" && run_as make -s "${target[@]}" PROVE_FLAGS="--timer"); then
        status=1
        for d in regression.diffs output_iso/regression.diffs pgtap_results/regression.diffs; do
            [ -f "$work/$d" ] && { echo "--- $d"; cat "$work/$d"; }
        done
        for l in "$work"/tmp_check/log/regress_log_*; do
            [ -f "$l" ] && { echo "--- $l (last 40 lines)"; tail -40 "$l"; }
        done
    fi
done

if [ $status -eq 0 ]; then
    echo "all test suites passed: ${suites[*]}"
else
    echo "some test suites FAILED" >&2
fi
exit $status
