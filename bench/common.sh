# shellcheck shell=bash
# What bench/run.sh and bench/ab.sh share, so that the two measure on the
# same terms.  Source it after scripts/lib/cluster.sh, then start the
# cluster with "${bench_settings[@]}" and make the tables with
# bench_schema.
#
#   bench_settings   the server settings of every benchmark cluster
#   settings_text    those settings on one line, for reports
#   q SQL            one statement, its result unaligned (psql -At)
#   bench_schema     the extension, the queue "bench" and the naive
#                    baseline's table bench_naive
#   reset_tables     empties the queue's tables and the baseline's
#   preload SYSTEM N puts a backlog of N jobs into the queue (SYSTEM
#                    queue, by enqueue_many in calls of 10,000, the
#                    largest queue.max_batch_size allows) or into the
#                    baseline's table (any other SYSTEM)
#   bench_workdir NAME
#                    makes the temp dir $work and, on exit, stops the
#                    cluster and removes the dir; a failure is reported
#                    as "NAME: FAILED" (bench/ab.sh, bench/anatomy.sh)

bench_settings=("shared_buffers = 1GB" "max_connections = 200" "synchronous_commit = off"
                "max_wal_size = 8GB" "checkpoint_timeout = 30min")

settings_text() { local IFS=,; echo "${bench_settings[*]}" | sed 's/,/, /g'; }

q() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

bench_schema() {
    psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION queue;
SELECT queue.create_queue('bench', max_attempts => 5);
CREATE TABLE bench_naive (id bigserial PRIMARY KEY, payload jsonb);
SQL
}

reset_tables() { q "TRUNCATE queue.job, queue.job_archive, bench_naive"; }

preload() {
    local system=$1 n=$2
    if [ "$system" = queue ]; then
        # the subquery names c, so it runs once per call of 10,000
        q "SELECT sum((SELECT count(*) FROM queue.enqueue_many('bench',
                 (SELECT jsonb_agg(jsonb_build_object('payload',
                           jsonb_build_object('task', 'resize-image', 'n', c * 10000 + i)))
                    FROM generate_series(1, least(10000, $n - c * 10000)) i))))
             FROM generate_series(0, ($n - 1) / 10000) c" >/dev/null
        q "VACUUM ANALYZE queue.job"
    else
        q "INSERT INTO bench_naive (payload)
           SELECT jsonb_build_object('task', 'resize-image', 'n', i) FROM generate_series(1, $n) i"
        q "VACUUM ANALYZE bench_naive"
    fi
}

bench_workdir() {
    bench_name=$1
    work=$(mktemp -d "/tmp/queue-$1.XXXXXX")
    trap bench_finish EXIT
    trap 'exit 130' INT TERM
}

bench_finish() {
    local rc=$?
    cluster_stop
    rm -rf "$work"
    [ $rc -eq 0 ] || echo "$bench_name: FAILED (exit $rc)" >&2
    exit $rc
}
