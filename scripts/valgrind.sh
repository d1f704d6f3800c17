#!/usr/bin/env bash
# Runs the pg_regress suites (sql/, expected/) and the isolation specs
# (test/isolation/) against a private PostgreSQL whose every process runs
# under valgrind's memcheck, with the background worker busy in a database
# of its own, then reads valgrind's reports.  On a fresh Debian 12 machine,
# as root (it takes 10 to 30 minutes):
#
#     bash scripts/valgrind.sh                # regress and isolation
#     bash scripts/valgrind.sh regress        # or only one of them
#
# It installs valgrind if missing and runs scripts/setup.sh (SKIP_SETUP=1
# skips that: the installed build is tested as it is; PRIVATE=1, below,
# tests this tree's build in a private copy of the installation instead),
# initdb's a cluster in a new temp dir as the user postgres (unix socket
# only, port 5480 or the next free one), starts the postmaster under
#
#     valgrind --trace-children=yes --track-origins=yes --num-callers=30
#              --error-exitcode=128 --suppressions=test/valgrind.supp ...
#
# (postgres forks without exec, and memcheck follows each fork into a log
# of its own, vg/vg.PID.log), runs the suites with pg_regress from PGXS the
# way "make installcheck" does, stops the server and prints a summary:
# processes traced, errors in total, errors with a frame in queue.so (ours),
# errors elsewhere, and the suppressions used.
#
# It exits non-zero when an error has a frame in queue.so, a test fails, a
# server process crashed or exited on a valgrind error (--error-exitcode
# makes any unsuppressed error do that, and the postmaster then restarts
# the server, which the tests running at that moment notice), the
# background worker did not do every step of its pass, or queue.so was
# replaced during the run (a "make install" elsewhere).  Errors elsewhere
# (inside postgres or libc) are listed with the suppression that would
# silence them; each is either a false positive, to suppress in
# test/valgrind.supp with a comment saying why, or a PostgreSQL problem to
# report upstream.  The temp dir is kept when the run fails (and with
# KEEP_WORK=1).  VALGRIND=0 runs the same without valgrind, to tell a
# difference that valgrind's slowness causes from a real one.
#
# Other builds.  PRIVATE=1 builds queue.so from this tree and installs it
# into a copy of PostgreSQL's bin, lib and share dirs in the temp dir
# (nothing system-wide changes, and a concurrent "make install" cannot swap
# the library under the run).  UBSAN=1 does the same with queue.so built
# with -fsanitize=undefined -fno-sanitize-recover=all -fno-wrapv and runs
# without valgrind: any undefined behaviour in our code ends its process
# with a "runtime error:" line in the server log, which fails the run.
#
# The background worker runs in a database of its own, queue_vg_worker,
# not in the regression database: the regression tests call relay(),
# expire_leases() and prune() themselves and compare the counts they return
# (a worker there would take part of that work first), and their expected
# output pins queue.databases = '' (08_config, 09_monitoring).  So the
# regression suite runs first; then queue.databases is set (ALTER SYSTEM and
# a reload), a small workload gives each step of a pass something to do
# (relay, expire_leases, expire_saga_deadlines, prune, prune_events), and
# the worker runs during the isolation specs; its counters are checked at
# the end.
#
# Limits.  Debian's postgres is not built with USE_VALGRIND, so palloc()
# and pfree() tell memcheck nothing: memory-context-level misuse is not
# visible.  A chunk handed out again from a context's free list counts as
# defined (it holds old data), and a read past a chunk's end or of a
# pfree'd chunk goes unseen while it stays inside a block the context still
# owns.  What memcheck does see: reads of memory never written since
# malloc() (a fresh context block), undefined bytes that steer a branch or
# reach a system call (write(), send() to the client), accesses outside any
# malloc'd block or to free()'d ones (a deleted context's blocks), bad
# free()s and overlapping memcpy()s.  Shared memory starts out defined; the
# undefined bytes a process copies into it stay undefined in that process's
# view only.  Leaks are not checked: a backend leaves its memory to exit().
# Postgres has no debug symbols here, so its frames show only exported
# function names.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
started=$SECONDS

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(regress isolation)
for suite in "${suites[@]}"; do
    case "$suite" in
        regress|isolation) ;;
        *) echo "unknown suite: $suite (use regress, isolation)" >&2; exit 2 ;;
    esac
done
VALGRIND=${VALGRIND:-1}
PRIVATE=${PRIVATE:-0}
UBSAN=${UBSAN:-0}
# valgrind and a sanitizer do not mix
[ "$UBSAN" = 1 ] && { PRIVATE=1; VALGRIND=0; }

if [ "$(id -u)" = 0 ]; then
    if [ "$VALGRIND" = 1 ] && ! command -v valgrind >/dev/null; then
        echo "valgrind: installing valgrind"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends valgrind >/dev/null
    fi
    [ "${SKIP_SETUP:-0}" = 1 ] || [ "$PRIVATE" = 1 ] || bash scripts/setup.sh
fi
if [ "$VALGRIND" = 1 ] && ! command -v valgrind >/dev/null; then
    echo "valgrind: valgrind is not installed (run this script as root)" >&2
    exit 2
fi
source scripts/lib/cluster.sh
source scripts/lib/private.sh

supp="$here/test/valgrind.supp"

work=$(mktemp -d /tmp/queue-valgrind.XXXXXX)
[ "$(id -u)" = 0 ] && chown "$PG_USER" "$work"
chmod 755 "$work"
vg="$work/vg"
server_pid=
server_rc=
reported=0
status=0

# stop_server MODE: stops the server and waits for the postmaster itself
# (pg_ctl returns once postmaster.pid is gone, before valgrind has written
# the postmaster's last lines); its exit status goes to server_rc.
stop_server() {
    [ -n "$server_pid" ] || return 0
    as_server_user pg_ctl -D "$work/data" -m "$1" -w -t 600 stop >/dev/null 2>&1 || true
    server_rc=0
    wait "$server_pid" || server_rc=$?
    server_pid=
}

# report: what the server log and valgrind's logs say; sets status.
report() {
    reported=1
    # Processes that crashed or exited on a valgrind error take the server
    # through crash recovery: the postmaster logs them.
    if grep -E 'exited with exit code 128|terminated by signal|was terminated by exception' "$work/server.log"; then
        echo "valgrind: a server process crashed or exited on a valgrind error (above)"
        status=1
    fi
    # UndefinedBehaviorSanitizer (UBSAN=1) reports to the server's stderr.
    if grep -E 'runtime error:' "$work/server.log"; then
        echo "valgrind: undefined behaviour reported (above)"
        status=1
    fi
    if [ -n "$server_rc" ]; then
        echo "valgrind: server stopped (postmaster exit code $server_rc)"
        [ "$server_rc" = 0 ] || status=1
    fi
    echo "valgrind: tested $queue_so, build id $build_id"
    if [ "$(build_id)" != "$build_id" ]; then
        echo "valgrind: $queue_so was replaced during the run (build id now $(build_id)): run again"
        status=1
    fi
    [ "$VALGRIND" = 1 ] || return 0
    perl - "$vg" "$work/server.log" "$work/queue.so.cus" <<'PERL' || status=1
# Reads valgrind's reports (vg.PID.log, one per process) and prints the
# summary.  An error is ours when a frame of any of its stacks (where it
# happened, where the block was allocated or freed, where the undefined
# value came from) lies in queue.so: a source file of one of its
# compilation units, or "(in .../queue.so)" without debug information.
# Exit status 1 if any is.
use strict;
use warnings;

my ($dir, $server_log, $cus) = @ARGV;

# queue.so's compilation units (readelf's list of them), as valgrind names
# them with --fullpath-after=: comp_dir/name
my %our_sources;
open my $re, '<', $cus or die "$cus: $!";
my ($name, $comp_dir);
while (<$re>)
{
	if (/DW_TAG_compile_unit/)
	{
		$our_sources{ $name =~ m{^/} ? $name : "$comp_dir/$name" } = 1 if defined $name && defined $comp_dir;
		($name, $comp_dir) = ();
	}
	$name = $1 if /DW_AT_name\s.*:\s(\S+)\s*$/;
	$comp_dir = $1 if /DW_AT_comp_dir\s.*:\s(\S+)\s*$/;
}
$our_sources{ $name =~ m{^/} ? $name : "$comp_dir/$name" } = 1 if defined $name && defined $comp_dir;
close $re;
die "no compilation units in queue.so (no debug information?)\n" unless %our_sources;

# pid -> what the process was, from the server log (log_line_prefix shows
# the backend type, log_connections the test's application_name)
my %what;
if (open my $log, '<', $server_log)
{
	while (<$log>)
	{
		$what{$1} = "app $2" if /\[(\d+)\] .*?LOG:  connection authorized: .*application_name=(\S+)/;
		$what{$1} //= $2 if /\[(\d+)\] (.+?) (?:LOG|WARNING|ERROR|FATAL):  / && $2 ne 'not initialized';
	}
}

# A frame line: "   at 0x4A1B2C3: fn (path/file.c:12)" or "... (in /lib/obj.so)".
sub is_ours
{
	my ($line) = @_;
	return 0 unless $line =~ /^\s+(?:at|by) 0x[0-9A-F]+: .* \((.*)\)$/;
	my $loc = $1;
	return $loc =~ m{^in .*/queue\.so$} ? 1 : 0 if $loc =~ /^in /;
	$loc =~ s/:\d+$//;
	return $our_sources{$loc} ? 1 : 0;
}

my ($procs, $procs_with_errors, $unfinished, $total, $unique, $ours_total, $ours_unique, $suppressed) = (0) x 8;
my (%supp_used, %others, @ours);
for my $file (sort glob("$dir/vg.*.log"))
{
	open my $fh, '<', $file or die "$file: $!";
	my ($pid) = $file =~ /vg\.(\d+)\.log$/;
	$procs++;

	# blocks: runs of "==PID== " lines between blank ones; the unprefixed
	# lines after an error are its suppression (--gen-suppressions=all)
	my (@blocks, $cur, $summary_at);
	$cur = { lines => [], supp => [] };
	while (my $l = <$fh>)
	{
		chomp $l;
		# valgrind's own remarks: the suppressions used, at exit
		if ($l =~ /^--\d+-- /)
		{
			$supp_used{$2} += $1 if $l =~ /used_suppression:\s+(\d+)\s+(\S+)/;
			next;
		}
		if ($l =~ /^==\d+== ?(.*)$/)
		{
			my $t = $1;
			if ($t eq '')
			{
				push @blocks, $cur if @{ $cur->{lines} };
				$cur = { lines => [], supp => [] };
				next;
			}
			if ($t =~ /^ERROR SUMMARY:/)
			{
				$suppressed += $1 if !defined $summary_at && $t =~ /suppressed: (\d+) from/;
				push @blocks, $cur if @{ $cur->{lines} };
				$cur = { lines => [], supp => [] };
				$summary_at //= scalar @blocks;
				next;
			}
			push @{ $cur->{lines} }, $t;
		}
		elsif (@blocks || @{ $cur->{lines} })
		{
			# a suppression belongs to the block just closed
			my $b = @{ $cur->{lines} } ? $cur : $blocks[-1];
			push @{ $b->{supp} }, $l;
		}
	}
	push @blocks, $cur if @{ $cur->{lines} };

	# With a summary (--show-error-list=yes), the errors after it come with
	# their counts; a process that never got to exit (SIGKILL) has only the
	# errors printed as they happened, each counted once.
	my @errors;
	if (defined $summary_at)
	{
		for my $b (@blocks[ $summary_at .. $#blocks ])
		{
			next unless $b->{lines}[0] =~ /^(\d+) errors in context \d+ of \d+:$/;
			my $n = $1;
			shift @{ $b->{lines} };
			push @errors, [ $n, $b ];
		}
	}
	else
	{
		$unfinished++;
		for my $b (@blocks)
		{
			push @errors, [ 1, $b ] if grep { /^\s+at 0x/ } @{ $b->{lines} };
		}
	}

	my $proc = "pid $pid" . (defined $what{$pid} ? " ($what{$pid})" : '');
	$procs_with_errors++ if @errors;
	for my $e (@errors)
	{
		my ($n, $b) = @$e;
		my @lines = @{ $b->{lines} };
		my $mine = grep { is_ours($_) } @lines;
		my $supp = join("\n", @{ $b->{supp} });
		$total += $n;
		$unique++;
		if ($mine)
		{
			$ours_total += $n;
			$ours_unique++;
			push @ours, join("\n", "[$proc, ${n}x]",
				map({ (is_ours($_) ? '>' : ' ') . $_ } @lines), $supp);
		}
		else
		{
			# the same error in many processes is listed once: no addresses
			my $sig = join("\n", map { s/0x[0-9A-F]{4,}/0x.../gir =~ s/\d[\d,]* bytes/N bytes/gr } @lines);
			$others{$sig}{count} += $n;
			$others{$sig}{procs}{$proc} = 1;
			$others{$sig}{supp} //= $supp;
		}
	}
}

printf "valgrind: %d processes traced, %d with errors%s\n", $procs, $procs_with_errors,
  $unfinished ? ", $unfinished without valgrind's exit summary (killed)" : '';
printf "valgrind: errors: %d (%d contexts); in queue.so (ours): %d (%d); elsewhere: %d (%d distinct)\n",
  $total, $unique, $ours_total, $ours_unique, $total - $ours_total, scalar(keys %others);
if (%supp_used)
{
	print "valgrind: $suppressed errors suppressed, by (count, suppression):\n";
	printf "   %6d  %s\n", $supp_used{$_}, $_
	  for sort { $supp_used{$b} <=> $supp_used{$a} || $a cmp $b } keys %supp_used;
}
else
{
	print "valgrind: no suppression used\n";
}
for my $sig (sort keys %others)
{
	my @p = sort keys %{ $others{$sig}{procs} };
	my $n = @p;
	@p = (@p[ 0 .. 2 ], '...') if @p > 4;
	print "--- error elsewhere, $others{$sig}{count}x in $n process(es): ", join(', ', @p), "\n";
	print "$sig\n$others{$sig}{supp}\n";
}
print "--- ERROR IN queue.so (its frames marked >) ", $_, "\n" for @ours;
exit($ours_total ? 1 : 0);
PERL
}

finish() {
    local rc=$?
    stop_server immediate
    if [ $reported = 0 ] && [ -f "$work/server.log" ]; then
        echo "valgrind: stopped early; what the logs say so far:"
        report || true
    fi
    if [ $rc -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "valgrind: logs, reports and test output kept in $work"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- a private installation (PRIVATE=1, UBSAN=1) ----------------------------
# This tree's build in a private copy of PostgreSQL's installation
# (scripts/lib/private.sh): nothing of the system's installation changes,
# and nothing there can change under the run.
if [ "$PRIVATE" = 1 ]; then
    make_args=()
    if [ "$UBSAN" = 1 ]; then
        # UndefinedBehaviorSanitizer in queue.so only; the first report
        # ends the process, and the report goes to the server log.
        # -fno-wrapv: PostgreSQL's -fwrapv makes signed overflow defined, so
        # the sanitizer would not check it; our code must not rely on it.
        make_args+=(COPT='-fsanitize=undefined -fno-sanitize-recover=all -fno-wrapv -fno-omit-frame-pointer'
                    SHLIB_LINK=-lubsan)
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
    fi
    what="this tree's queue.so"
    [ "$UBSAN" = 1 ] && what+=" (${make_args[*]})"
    echo "valgrind: building $what into $work/root"
    private_install "$work/root" "$here" "$work/build.log" "${make_args[@]}"
    PG_BIN=$PRIVATE_BIN
    export PATH="$PG_BIN:$PATH"
fi

pgxs_dir="$(dirname "$(dirname "$("$PG_BIN/pg_config" --pgxs)")")"
pg_regress="$pgxs_dir/test/regress/pg_regress"
pg_isolation_regress="$pgxs_dir/test/isolation/pg_isolation_regress"
queue_so="$("$PG_BIN/pg_config" --pkglibdir)/queue.so"

# The build under test: the library the postmaster loads at its start, and
# its compilation units, which tell its frames in valgrind's stacks.
build_id() { readelf -n "$queue_so" | awk '/Build ID/ {print $3}'; }
build_id=$(build_id)

readelf --debug-dump=info --dwarf-depth=1 "$queue_so" >"$work/queue.so.cus"

# A private copy of the tests: pg_regress writes its results next to them.
tar -C "$here" -cf - sql expected test/isolation test/queue.conf | tar -C "$work" -xf -
[ "$(id -u)" = 0 ] && chown -R "$PG_USER" "$work"
as_server_user mkdir "$vg"

# --- the server -----------------------------------------------------------
port=
for ((p = 5480; p <= 5499; p++)); do
    port_is_free "$p" && { port=$p; break; }
done
[ -n "$port" ] || { echo "valgrind: no free port in 5480-5499" >&2; exit 1; }

# initdb runs no code of ours (nothing is preloaded in bootstrap mode), so
# it runs without valgrind.
as_server_user initdb -D "$work/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C --no-sync >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; exit 1; }
{
    echo "# added by scripts/valgrind.sh"
    echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$work'"
    # what pg_regress --temp-config gives "make installcheck"'s servers
    cat "$work/test/queue.conf"
    # LLVM's JIT emits code memcheck cannot follow; it is not ours either.
    echo "jit = off"
    echo "fsync = off"
    # who is who: a log vg/vg.PID.log is matched to its process by the pid,
    # and a backend's connection line names its test (application_name).
    echo "log_line_prefix = '%m [%p] %b '"
    echo "log_connections = on"
} | as_server_user tee -a "$work/data/postgresql.conf" >/dev/null

server=("$PG_BIN/postgres" -D "$work/data")
if [ "$VALGRIND" = 1 ]; then
    # --leak-check=no: backends leave their memory to exit(), so every
    # context would be a "leak".  --fullpath-after= (empty): frames show
    # full source paths, which tells queue.so's files from others of the
    # same name.  --show-error-list=yes: at exit each log lists its errors
    # with their counts and the suppressions used; --gen-suppressions=all:
    # with the suppression that would silence each.
    server=(valgrind --tool=memcheck --trace-children=yes --track-origins=yes
            --num-callers=30 --error-exitcode=128 --leak-check=no
            --suppressions="$supp" --gen-suppressions=all --show-error-list=yes
            --fullpath-after= --log-file="$vg/vg.%p.log"
            "${server[@]}")
fi
echo "valgrind: starting the server in $work (port $port)$([ "$VALGRIND" = 1 ] || echo ', WITHOUT valgrind')"
as_server_user "${server[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
export PGHOST=$work PGPORT=$port PGUSER=postgres PGDATABASE=postgres
for _ in $(seq 600); do
    pg_isready -q -t 1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "valgrind: the server exited" >&2; exit 1; }
    sleep 0.5
done
pg_isready -q -t 1 || { echo "valgrind: the server did not start" >&2; exit 1; }

val() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# --- the background worker -----------------------------------------------------
# Started between the suites, not before: the regression tests' expected
# output pins queue.databases = '' and no worker (08_config, 09_monitoring).
# Its workload gives each step of a pass something to do: events to relay
# and then prune (topic retention 1 ms), a completed job to prune (retention
# 1 ms), two leases that expire on the jobs' last attempt, and a saga whose
# deadline passes while its first step waits.
start_worker() {
    echo "=== background worker (database queue_vg_worker)"
    val -c "CREATE DATABASE queue_vg_worker" \
        -c "ALTER SYSTEM SET queue.databases = 'queue_vg_worker'" -c "SELECT pg_reload_conf()" >/dev/null ||
        return 1
    val -d queue_vg_worker >/dev/null <<'SQL' || return 1
CREATE EXTENSION queue;
SELECT queue.create_queue('vg_jobs', max_attempts => 1, retention => '1 millisecond');
SELECT queue.create_queue('vg_events');
SELECT queue.create_queue('vg_step');
SELECT queue.create_topic('vg_topic', retention => '1 millisecond');
SELECT queue.subscribe('vg_topic', 'vg_events');
SELECT queue.define_saga('vg_saga', '[{"name": "only", "queue": "vg_step"}]', deadline => '1 second');
SELECT queue.enqueue_many('vg_jobs', (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('n', i)))
                                        FROM generate_series(1, 3) i));
CREATE TEMP TABLE claimed AS SELECT * FROM queue.claim('vg_jobs', 'vg', 3, lease => '1 second');
SELECT queue.complete(job_id, lease_token) FROM claimed ORDER BY job_id LIMIT 1;
SELECT queue.start_saga('vg_saga', '{"n": 1}');
SQL
    local i
    for i in 1 2 3 4 5; do
        val -d queue_vg_worker -c "SELECT queue.publish('vg_topic', '{\"n\": $i}')" >/dev/null || return 1
    done
}

# check_worker: its counters, once it has done every step (under valgrind a
# pass is slow: up to five minutes more).
check_worker() {
    local query="SELECT events_relayed || ' ' || leases_expired || ' ' || jobs_pruned || ' ' ||
                        events_pruned || ' ' || errors || ' ' ||
                        (SELECT count(*) FROM queue.sagas WHERE status <> 'running')
                   FROM queue.workers WHERE database = 'queue_vg_worker'"
    local relayed expired pruned events_pruned errors unwound
    for _ in $(seq 300); do
        read -r relayed expired pruned events_pruned errors unwound \
            < <(val -d queue_vg_worker -c "$query" || true) || true
        if [ "${relayed:-0}" -ge 5 ] && [ "${expired:-0}" -ge 2 ] && [ "${pruned:-0}" -ge 1 ] &&
           [ "${events_pruned:-0}" -ge 5 ] && [ "${unwound:-0}" -ge 1 ]; then
            echo "valgrind: worker of queue_vg_worker: events_relayed=$relayed leases_expired=$expired" \
                 "jobs_pruned=$pruned events_pruned=$events_pruned errors=$errors sagas_unwound=$unwound"
            return 0
        fi
        sleep 1
    done
    echo "valgrind: the worker did not do every step: events_relayed=$relayed (want 5)" \
         "leases_expired=$expired (2) jobs_pruned=$pruned (1) events_pruned=$events_pruned (5)" \
         "sagas_unwound=$unwound (1); errors=$errors"
    return 1
}

# --- the suites -------------------------------------------------------------
# As "make installcheck" runs them (pgxs.mk: pg_regress_installcheck and
# pg_isolation_regress_installcheck), but against this server instead of a
# --temp-instance; pg_regress creates the database and the extension.
run_suite() {
    local name=$1 prog=$2 rc=0
    shift 2
    echo "=== $name"
    (cd "$work" && as_server_user "$prog" --bindir="$PG_BIN" --host="$work" --port="$port" \
        --load-extension=queue --outputdir="$work/$name" "$@") || rc=$?
    if [ $rc -ne 0 ]; then
        status=1
        echo "valgrind: $name FAILED"
        [ -f "$work/$name/regression.diffs" ] && cat "$work/$name/regression.diffs"
    fi
    return 0
}
# The regression suite first (without the worker), then the worker, busy
# during the isolation specs (they use a database of their own).
worker_started=0
for suite in regress worker isolation; do
    case " ${suites[*]} worker " in *" $suite "*) ;; *) continue ;; esac
    case "$suite" in
        regress)
            # the Makefile's REGRESS: sql/*.sql in name order
            mapfile -t tests < <(cd "$work/sql" && ls -- *.sql | sed 's/\.sql$//' | LC_ALL=C sort)
            run_suite regress "$pg_regress" --inputdir="$work" \
                --dbname=contrib_regression "${tests[@]}" ;;
        worker)
            if start_worker; then
                worker_started=1
            else
                echo "valgrind: the worker's workload FAILED"
                status=1
            fi ;;
        isolation)
            # the Makefile's ISOLATION: test/isolation/specs/*.spec
            mapfile -t tests < <(cd "$work/test/isolation/specs" && ls -- *.spec | sed 's/\.spec$//' | LC_ALL=C sort)
            run_suite isolation "$pg_isolation_regress" --inputdir="$work/test/isolation" \
                --dbname=isolation_regression "${tests[@]}" ;;
    esac
done
if [ $worker_started = 1 ]; then
    check_worker || status=1
fi
echo "valgrind: extension queue $(val -d "$([ $worker_started = 1 ] && echo queue_vg_worker || echo contrib_regression)" \
    -c "SELECT extversion FROM pg_extension WHERE extname = 'queue'" 2>/dev/null || echo '?')"

# --- stop, then read the logs ---------------------------------------------------
stop_server fast
report

echo "valgrind: took $((SECONDS - started)) s"
if [ $status = 0 ]; then
    echo "valgrind: PASSED (${suites[*]})"
else
    echo "valgrind: FAILED" >&2
fi
exit $status
