# shellcheck shell=bash
# The peers of bench/run.sh --peers, sourced by run.sh after its cluster is up
# (uses its q, fmt, pgbench_check, $here, $duration, $rounds, $wake_rate,
# $backlog_min, $CLUSTER_DIR).  Never part of --smoke.
#
# Systems, one database each on the same server (and Redis for BullMQ):
#   queue-node       this extension driven from Node.js with pg (db queue_node)
#   pg-boss          npm pg-boss, its JS API (db pgboss)
#   graphile-worker  npm graphile-worker, its JS API (db graphile)
#   pgq              Debian postgresql-15-pgq3, driven by pgbench (db pgq)
#   bullmq           npm bullmq on a private redis-server (127.0.0.1, own port,
#                    no persistence), the non-PostgreSQL reference
# Node drivers: bench/node/bench.js; versions pinned in bench/node/package.json
# (and package-lock.json).

peer_systems=(queue-node pg-boss graphile-worker pgq bullmq)
REDIS_DIR= REDIS_PORT= redis_pid=

# peers_install: the packages and the npm modules, idempotently.
peers_install() {
    local need=()
    [ -f /usr/share/postgresql/15/extension/pgq.control ] || need+=(postgresql-15-pgq3)
    command -v redis-server >/dev/null || need+=(redis-server)
    if [ ${#need[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || { echo "bench: --peers needs ${need[*]} (run as root to install)" >&2; return 1; }
        echo "bench: installing ${need[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    command -v node >/dev/null && command -v npm >/dev/null ||
        { echo "bench: --peers needs node (>= 20) and npm" >&2; return 1; }
    # npm ci when node_modules is missing or older than the lock file
    if ! cmp -s "$here/bench/node/package-lock.json" "$here/bench/node/node_modules/.bench-lock" 2>/dev/null; then
        echo "bench: npm ci in bench/node"
        (cd "$here/bench/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        cp "$here/bench/node/package-lock.json" "$here/bench/node/node_modules/.bench-lock"
    fi
}

redis_start() {
    local port
    for ((port = 6390; port <= 6399; port++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
    done
    REDIS_PORT=$port
    REDIS_DIR=$(mktemp -d /tmp/queue-bench-redis.XXXXXX)
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" --protected-mode yes &
    redis_pid=$!
    bg_pids+=("$redis_pid")
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
    echo "bench: redis-server did not start" >&2
    return 1
}
redis_stop() {
    [ -n "$redis_pid" ] || return 0
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    rm -rf "$REDIS_DIR"
    redis_pid=
}

peers_setup() {
    peers_install
    redis_start
    q "CREATE DATABASE queue_node"
    q "CREATE DATABASE pgboss"
    q "CREATE DATABASE graphile"
    q "CREATE DATABASE pgq"
    PGDATABASE=queue_node q "CREATE EXTENSION queue" >/dev/null
    PGDATABASE=queue_node q "SELECT queue.create_queue('bench', max_attempts => 5), queue.create_queue('wake')" >/dev/null
    PGDATABASE=pgq psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION pgq;
-- one PgQ consumer turn: the next batch (the events between two ticks), its
-- events, finish_batch; one transaction (one pgbench call) per batch.
CREATE FUNCTION bench_pgq_consume(q text, c text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE b bigint; n int;
BEGIN
    b := pgq.next_batch(q, c);
    IF b IS NULL THEN RETURN 0; END IF;
    SELECT count(*) INTO n FROM pgq.get_batch_events(b);
    PERFORM pgq.finish_batch(b);
    RETURN n;
END $$;
SQL
    q "ALTER TABLE bench_result ADD COLUMN redis_cmds_per_job float8"
    # one warm-up of each library, which also creates its schema
    peer_node pg-boss enqueue 1 1 1 >/dev/null
    peer_node graphile-worker enqueue 1 1 1 >/dev/null
    peer_node bullmq enqueue 1 1 1 >/dev/null
    peer_reset_all
    peer_versions=$(cd "$here/bench/node" && node -e '
        const v = (p) => require(p + "/package.json").version;
        console.log(`pg-boss ${v("pg-boss")}, graphile-worker ${v("graphile-worker")}, bullmq ${v("bullmq")} (ioredis ${v("ioredis")}), pg ${v("pg")}`)')
    peer_versions="$peer_versions; PgQ $(PGDATABASE=pgq q "SELECT extversion FROM pg_extension WHERE extname = 'pgq'") (Debian $(dpkg-query -W -f '${Version}' postgresql-15-pgq3)); Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') (Debian $(dpkg-query -W -f '${Version}' redis-server)); Node.js $(node --version)"
    echo "bench: peers: $peer_versions; Redis on 127.0.0.1:$REDIS_PORT"
}

peer_reset_all() {
    PGDATABASE=queue_node q "TRUNCATE queue.job, queue.job_archive"
    PGDATABASE=pgboss q "TRUNCATE pgboss.job, pgboss.archive"
    PGDATABASE=graphile q "TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues"
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    pgq_reset
}
pgq_reset() {
    PGDATABASE=pgq q "SELECT pgq.drop_queue(queue_name, true) FROM pgq.queue" >/dev/null
    PGDATABASE=pgq q "SELECT pgq.create_queue('bench')" >/dev/null
    PGDATABASE=pgq q "SELECT pgq.register_consumer('bench', 'c1')" >/dev/null
}
peer_db() {
    case "$1" in queue-node) echo queue_node ;; pg-boss) echo pgboss ;;
                 graphile-worker) echo graphile ;; pgq) echo pgq ;; bullmq) echo postgres ;; esac
}
peer_short() {
    case "$1" in queue-node) echo queue ;; pg-boss) echo pgboss ;; graphile-worker) echo graphile ;; *) echo "$1" ;; esac
}

# peer_node SYSTEM WORKLOAD CLIENTS BATCH SECONDS [BACKLOG|RATE]: one Node run; prints its JSON.
peer_node() {
    local system=$1
    shift
    BENCH_DB=$(peer_db "$system") REDIS_PORT=$REDIS_PORT \
        timeout 600 node "$here/bench/node/bench.js" "$(peer_short "$system")" "$@" 2>"$CLUSTER_DIR/node.err" ||
        { echo "bench: peers: node bench.js $system $* failed:" >&2; cat "$CLUSTER_DIR/node.err" >&2; return 1; }
}

xact_commits() {
    q "SELECT pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'" | tail -1
}

# peer_record ROUND WORKLOAD BATCH CLIENTS SYSTEM SCRIPT BACKLOG SECONDS JOBS COUNTER-DELTA DRY
peer_record() {
    local round=$1 workload=$2 batch=$3 clients=$4 system=$5 script=$6 backlog=$7 secs=$8 njobs=$9
    local delta=${10} dry=${11} rate cpj=NULL cmds=NULL
    rate=$(awk -v d="$njobs" -v s="$secs" 'BEGIN { printf "%.1f", d / s }')
    if [ "$system" = bullmq ]; then
        cmds=$(awk -v n="$delta" -v d="$njobs" 'BEGIN { printf "%.4f", (d > 0 ? n / d : 0) }')
    else
        cpj=$(awk -v n="$delta" -v d="$njobs" 'BEGIN { printf "%.4f", (d > 0 ? n / d : 0) }')
    fi
    q "INSERT INTO bench_result (pass, round, workload, batch, clients, system, script, backlog, txns,
                                 tps, seconds, jobs, jobs_per_s, commits_per_job, ran_dry, redis_cmds_per_job)
       VALUES ('peers', $round, '$workload', $batch, $clients, '$system', '$script', $backlog, NULL,
               NULL, $secs, $njobs, $rate, $cpj, $dry, $cmds)"
    printf 'bench: peers r%d %-17s %2d clients %-15s %12s jobs/s  %s  (%s jobs in %.2f s%s)\n' \
        "$round" "$workload" "$clients" "$system" "$(fmt "$rate")" \
        "$([ "$system" = bullmq ] && echo "$(awk -v x="$cmds" 'BEGIN { printf "%.3g", x }') redis cmds/job" ||
           echo "$(awk -v x="$cpj" 'BEGIN { printf "%.3g", x }') commits/job")" \
        "$(fmt "$njobs")" "$secs" "$([ "$backlog" = 0 ] || echo ", backlog $(fmt "$backlog")")"
}

# peer_measure ROUND WORKLOAD KIND BATCH CLIENTS SYSTEM
peer_measure() {
    local round=$1 workload=$2 kind=$3 batch=$4 clients=$5 system=$6 json backlog=0 c0 c1 rc=0
    if [ "$system" = pgq ]; then
        local script db=pgq
        pgq_reset
        if [ "$kind" = enqueue ]; then
            script=pgq_enqueue.sql
            [ "$batch" = 1 ] || script=pgq_enqueue_batch.sql
            q "CHECKPOINT"
            c0=$(xact_commits $db)
            PGDATABASE=$db pgbench -n -M prepared -f "$here/bench/$script" -c "$clients" -j 2 \
                -T "$duration" >"$log" 2>&1 || rc=$?
            pgbench_check "$log" "$rc" "$script"
            c1=$(xact_commits $db)
            peer_record "$round" "$workload" "$batch" "$clients" pgq "$script" 0 "$seconds" \
                $((txns * batch)) $((c1 - c0 - 1)) false
        else
            # backlog: $backlog_min events, a tick after every 500 (pgqd's default
            # ticker_max_count), so the consumer sees the batches pgqd would make
            backlog=$backlog_min
            local ticks=$(((backlog + 499) / 500))
            for ((i = 0; i < ticks; i++)); do
                echo "SELECT count(pgq.insert_event('bench', 'job', jsonb_build_object('task', 'resize-image', 'n', $i * 500 + g)::text)) FROM generate_series(1, least(500, $backlog - $i * 500)) g;"
                echo "SELECT pgq.ticker('bench');"
            done | PGDATABASE=$db psql -X -q -At -v ON_ERROR_STOP=1 >/dev/null
            PGDATABASE=$db q "VACUUM ANALYZE"
            q "CHECKPOINT"
            c0=$(xact_commits $db)
            PGDATABASE=$db pgbench -n -M prepared -f "$here/bench/pgq_consume.sql" -c 1 -j 1 \
                -t "$ticks" >"$log" 2>&1 || rc=$?
            pgbench_check "$log" "$rc" pgq_consume.sql
            c1=$(xact_commits $db)
            [ "$(PGDATABASE=$db q "SELECT pgq.next_batch('bench', 'c1') IS NULL")" = t ] ||
                { echo "bench: peers: pgq: events left after $ticks batches" >&2; return 1; }
            peer_record "$round" "$workload" 500 1 pgq pgq_consume.sql "$backlog" "$seconds" \
                "$backlog" $((c1 - c0 - 1)) false
        fi
        return 0
    fi
    if [ "$kind" = enqueue ]; then
        json=$(peer_node "$system" enqueue "$clients" "$batch" "$duration")
    else
        backlog=$backlog_min
        json=$(peer_node "$system" drain "$clients" "$batch" "$duration" "$backlog")
    fi
    # reset for the next run (the libraries' tables, Redis)
    case "$system" in
        queue-node) PGDATABASE=queue_node q "TRUNCATE queue.job, queue.job_archive" ;;
        pg-boss) PGDATABASE=pgboss q "TRUNCATE pgboss.job, pgboss.archive" ;;
        graphile-worker) PGDATABASE=graphile q "TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues" ;;
        bullmq) redis-cli -p "$REDIS_PORT" flushall >/dev/null ;;
    esac
    local secs njobs delta left stale
    read -r secs njobs delta left stale < <(node -e '
        const r = JSON.parse(process.argv[1]);
        console.log([r.seconds.toFixed(3), r.jobs, r.counter_delta, r.left ?? 0, r.stale_leases ?? 0].join(" "))' "$json")
    peer_record "$round" "$workload" "$batch" "$clients" "$system" "node/bench.js" "$backlog" "$secs" \
        "$njobs" "$delta" false
    # the jobs queue's Node.js workers dropped on QU001 (a lost lease), kept
    # for the report: a drain that loses leases is doing something wrong
    if [ "$system" = queue-node ] && [ "$kind" = drain ]; then
        q "INSERT INTO bench_extra VALUES (6, 'drain_stale_leases', '$workload/$clients/r$round',
                                           jsonb_build_object('stale_leases', $stale))"
        [ "$stale" = 0 ] || echo "bench: peers r$round $workload $clients clients queue-node: $stale QU001 errors" >&2
    fi
}

peer_workloads=(
    "enqueue enqueue 1 8"
    "enqueue_batch enqueue 100 8"
    "claim_complete_1 drain 1 8,2"
    "claim_complete_50 drain 50 8,2"
)

bench_peers() {
    local round w workload kind batch clients_list clients order i n=${#peer_systems[@]} system
    for ((round = 1; round <= rounds; round++)); do
        for w in "${peer_workloads[@]}"; do
            read -r workload kind batch clients_list <<<"$w"
            for clients in ${clients_list//,/ }; do
                # the systems in turn, starting one further each round
                for ((i = 0; i < n; i++)); do
                    system=${peer_systems[$(((i + round - 1) % n))]}
                    # PgQ drains with one consumer (its model), once per round;
                    # BullMQ's open-source Worker has no batches
                    if [ "$system" = pgq ] && [ "$kind" = drain ]; then
                        [ "$workload" = claim_complete_1 ] && [ "$clients" = 8 ] || continue
                        peer_measure "$round" drain_pgq drain 500 1 pgq
                        continue
                    fi
                    if [ "$system" = bullmq ] && [ "$batch" = 50 ]; then continue; fi
                    peer_measure "$round" "$workload" "$kind" "$batch" "$clients" "$system"
                done
            done
        done
    done
    # wake-up latency: 4 workers, a producer at $wake_rate jobs/s, once each
    for system in queue-node graphile-worker bullmq pg-boss; do
        local json
        json=$(peer_node "$system" wake 4 1 "$duration" "$wake_rate")
        case "$system" in
            queue-node) PGDATABASE=queue_node q "TRUNCATE queue.job, queue.job_archive" ;;
            pg-boss) PGDATABASE=pgboss q "TRUNCATE pgboss.job, pgboss.archive" ;;
            graphile-worker) PGDATABASE=graphile q "TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues" ;;
            bullmq) redis-cli -p "$REDIS_PORT" flushall >/dev/null ;;
        esac
        q "INSERT INTO bench_extra VALUES (5, 'wake_peer', '$system', '$json'::jsonb)"
        q "SELECT format('bench: peers wake %-15s %s jobs/s (target %s), %s jobs, %s received: p50 %s ms, p95 %s ms, p99 %s ms, max %s ms',
                         '$system', r->>'jobs_per_s', r->>'target_rate', r->>'jobs', r->>'received', r->>'p50_ms',
                         r->>'p95_ms', r->>'p99_ms', r->>'max_ms')
             FROM (SELECT '$json'::jsonb AS r) x"
    done
    redis_stop
}

# Guarantees of each system, as configured here (see the notes under the table).
peer_guarantees_sql="
    SELECT * FROM (VALUES
      ('queue',           1, 'lease (timeout, extend)', 'yes (lease token per attempt)', 'yes (backoff, dead letters)', 'yes (job_archive)', 'PostgreSQL'),
      ('queue-node',      2, 'lease (timeout, extend)', 'yes (lease token per attempt)', 'yes (backoff, dead letters)', 'yes (job_archive)', 'PostgreSQL'),
      ('pg-boss',         3, 'expiry (expireInSeconds)', 'no (complete by job id)', 'yes (retryLimit, backoff, dead letter queue)', 'yes (completed rows kept, then archive)', 'PostgreSQL'),
      ('graphile-worker', 4, 'lock, 4 h fixed timeout', 'no (complete by job id)', 'yes (exponential backoff, max_attempts)', 'no (completed jobs deleted)', 'PostgreSQL'),
      ('pgq',             5, 'n/a (batch per consumer, redelivered until finish_batch)', 'n/a', 'manual (pgq.event_retry)', 'rotation (kept until its table rotates)', 'PostgreSQL'),
      ('bullmq',          6, 'lock (30 s, renewed; stalled check)', 'yes (lock token)', 'yes (attempts, backoff)', 'yes (completed set)', 'Redis, no persistence'),
      ('baseline',        7, 'no', 'no', 'no', 'no', 'PostgreSQL')
    ) g(system, ord, lease, fencing, retries, history, store)"

# peers_report MD: appends the peers' tables to the Markdown report.
peers_report() {
    local md=$1
    {
        echo
        echo "## Peers: the same workloads through pg-boss, graphile-worker, PgQ and BullMQ (synchronous_commit = off)"
        echo
        echo "Versions: $peer_versions. Each PostgreSQL system has its own database on the same server"
        echo "as the rows above; BullMQ runs on a private \`redis-server\` (127.0.0.1 only, no persistence:"
        echo "\`--save '' --appendonly no\`), so it neither fsyncs nor replicates: a reference, not a peer"
        echo "in durability. The systems take turns in each round (one further each round). Drivers:"
        echo
        echo "- **queue (pgbench)**: the rows above (\`bench/*.sql\`; drains from a backlog sized to outlast the run);"
        echo "  the drain cells are the \`complete_and_claim\` rows (one call per turn, the documented worker loop)."
        echo "- **queue (Node pg)**: this extension from a plain Node.js loop with \`pg\` (\`bench/node/bench.js\`),"
        echo "  like-for-like with the Node libraries: N async loops, each its own connection, \`queue.enqueue\` /"
        echo "  \`enqueue_many\`; workers loop on \`complete_and_claim(batch)\` with the tokens of the last turn"
        echo "  (and, in the wake-up workload, \`claim(..., wait)\` when it finds nothing)."
        echo "- **pg-boss**: \`send\` / \`insert\` (100 per call); drain with its documented \`fetch(name, {batchSize})\`"
        echo "  + \`complete(name, ids)\` JS API, N loops sharing its pool (not \`work()\`, which sleeps"
        echo "  \`pollingIntervalSeconds\` >= 0.5 s between polls)."
        echo "- **graphile-worker**: \`addJob\` / \`addJobs\` (100 per call); drain with its worker API, \`run({concurrency: N})\`;"
        echo "  batch 50 = its documented batching (\`localQueue.size: 50\`, \`completeJobBatchDelay: 0\`)."
        echo "- **PgQ**: pgbench scripts: \`pgq.insert_event\` (\`pgq_enqueue.sql\`, \`pgq_enqueue_batch.sql\`: 100 per call);"
        echo "  drain by one consumer (its model: one reader per consumer, a batch = the events between two"
        echo "  ticks), \`next_batch\` + \`get_batch_events\` + \`finish_batch\` in one transaction per batch"
        echo "  (\`pgq_consume.sql\`); the backlog's ticks are made by calling \`pgq.ticker()\` after every 500"
        echo "  events (pgqd's default \`ticker_max_count\`). Cells for N workers are n/a."
        echo "- **BullMQ**: \`add\` / \`addBulk\` (100 per call); drain with one \`Worker\` of \`concurrency: N\`. Batches"
        echo "  are a BullMQ Pro feature: batch 50 is n/a."
        echo
        echo "Drains by the peers: a backlog of $(fmt "$backlog_min") jobs, timed until it is gone (or $duration s)."
        echo "Each cell: jobs/s (median, min-max over rounds) and, after the slash, commits per job measured"
        echo "as the database's \`pg_stat_database.xact_commit\` delta over the run divided by the jobs done"
        echo "(so a library's own maintenance queries count); for BullMQ Redis commands per job"
        echo "(\`total_commands_processed\` delta)."
        echo
    } >>"$md"
    psql -X -q -At -v ON_ERROR_STOP=1 >>"$md" <<SQL
WITH r AS (
    -- queue (pgbench) drains through complete_and_claim, its one-call path
    SELECT pass, replace(workload, 'complete_and_claim_', 'claim_complete_') AS workload,
           clients, batch, system, percentile_cont(0.5) WITHIN GROUP (ORDER BY jobs_per_s) AS rate, min(jobs_per_s) AS lo,
           max(jobs_per_s) AS hi, avg(commits_per_job) AS cpj, avg(redis_cmds_per_job) AS cmds,
           bool_or(ran_dry) AS dry, count(*) AS runs
      FROM bench_result
     WHERE pass = 'peers'
        OR (pass = 'async' AND system = 'queue' AND workload NOT LIKE 'claim_complete_%')
     GROUP BY 1, 2, 3, 4, 5
), cell AS (
    SELECT workload, clients, batch, system,
           to_char(rate, 'FM999,999,990') ||
           CASE WHEN runs > 1 THEN ' (' || to_char(lo, 'FM999,999,990') || '-' || to_char(hi, 'FM999,999,990') || ')' ELSE '' END ||
           CASE WHEN dry THEN ' *' ELSE '' END || ' / ' ||
           CASE WHEN system = 'bullmq' THEN rtrim(rtrim(round(cmds::numeric, 2)::text, '0'), '.') || ' cmds'
                ELSE rtrim(rtrim(round(cpj::numeric, 3)::text, '0'), '.') END AS txt,
           rate
      FROM r
), rows(ord, workload, clients, batch, label) AS (VALUES
    (1, 'enqueue', 8, 1, 'enqueue, 1 job per call'),
    (2, 'enqueue_batch', 8, 100, 'enqueue, 100 jobs per call'),
    (3, 'claim_complete_1', 8, 1, 'drain, batch 1'),
    (4, 'claim_complete_1', 2, 1, 'drain, batch 1'),
    (5, 'claim_complete_50', 8, 50, 'drain, batch 50'),
    (6, 'claim_complete_50', 2, 50, 'drain, batch 50'),
    (7, 'drain_pgq', 1, 500, 'drain, PgQ model: 1 consumer, batch = 1 tick (500)')
), sys(system, col) AS (VALUES ('queue', 1), ('queue-node', 2), ('pg-boss', 3), ('graphile-worker', 4), ('pgq', 5), ('bullmq', 6))
SELECT line FROM (
    SELECT -3 AS ord, '| workload | clients | queue (pgbench) | queue (Node pg) | pg-boss | graphile-worker | PgQ | BullMQ (Redis) |' AS line
    UNION ALL SELECT -2, '|---|---:|---:|---:|---:|---:|---:|---:|'
    UNION ALL
    SELECT -1, '| guarantees: lease / fencing / retries / history | | ' ||
           string_agg(format('%s / %s / %s / %s',
                             CASE WHEN g.lease LIKE 'n/a%' THEN 'n/a' WHEN g.lease = 'no' THEN 'no' ELSE 'yes' END,
                             split_part(g.fencing, ' ', 1), split_part(g.retries, ' ', 1),
                             split_part(g.history, ' ', 1)), ' | ' ORDER BY s.col) || ' |'
      FROM sys s JOIN ($peer_guarantees_sql) g USING (system)
    UNION ALL
    SELECT w.ord, format('| %s | %s | %s |', w.label, w.clients,
                         string_agg(coalesce(c.txt, 'n/a'), ' | ' ORDER BY s.col))
      FROM rows w CROSS JOIN sys s
      LEFT JOIN cell c ON c.workload = w.workload AND c.clients = w.clients AND c.system = s.system
     GROUP BY w.ord, w.label, w.clients
) t ORDER BY ord;
SQL
    {
        echo
        echo "Ratios, queue (Node pg) / each peer, same run (jobs/s):"
        echo
    } >>"$md"
    psql -X -q -At -v ON_ERROR_STOP=1 >>"$md" <<'SQL'
WITH r AS (
    SELECT workload, clients, system, percentile_cont(0.5) WITHIN GROUP (ORDER BY jobs_per_s) AS rate
      FROM bench_result WHERE pass = 'peers' GROUP BY 1, 2, 3
), rows(ord, workload, clients, label) AS (VALUES
    (1, 'enqueue', 8, 'enqueue, 1 job per call'), (2, 'enqueue_batch', 8, 'enqueue, 100 jobs per call'),
    (3, 'claim_complete_1', 8, 'drain, batch 1'), (4, 'claim_complete_1', 2, 'drain, batch 1'),
    (5, 'claim_complete_50', 8, 'drain, batch 50'), (6, 'claim_complete_50', 2, 'drain, batch 50'))
SELECT line FROM (
    SELECT -2 AS ord, '| workload | clients | / pg-boss | / graphile-worker | / PgQ | / BullMQ |' AS line
    UNION ALL SELECT -1, '|---|---:|---:|---:|---:|---:|'
    UNION ALL
    SELECT w.ord, format('| %s | %s | %s |', w.label, w.clients,
           string_agg(coalesce(to_char(qn.rate / nullif(p.rate, 0), 'FM990.00'), 'n/a'), ' | ' ORDER BY s.col))
      FROM rows w CROSS JOIN (VALUES ('pg-boss', 1), ('graphile-worker', 2), ('pgq', 3), ('bullmq', 4)) s(system, col)
      LEFT JOIN r qn ON qn.workload = w.workload AND qn.clients = w.clients AND qn.system = 'queue-node'
      LEFT JOIN r p ON p.workload = w.workload AND p.clients = w.clients AND p.system = s.system
     GROUP BY w.ord, w.label, w.clients
) t ORDER BY ord;
SQL
    {
        echo
        echo "### Peers: wake-up latency, enqueue call to handler (4 workers, producer at ${wake_rate} jobs/s)"
        echo
        echo "One Node.js process per system: a producer enqueues one job per call at a steady rate (at most"
        echo "2 calls in flight), each job carrying \`performance.now()\` taken just before its enqueue call;"
        echo "the handler (or, for queue, the return of \`claim(..., wait => '1 second')\`) records the"
        echo "difference. So a sample is the enqueue call and its commit, the wake-up, the fetch and the"
        echo "library's dispatch. How each waits: queue: waiting claims; graphile-worker: LISTEN/NOTIFY;"
        echo "BullMQ: blocking Redis commands; pg-boss: no waiting, \`work()\` polls (here every 0.5 s,"
        echo "its minimum); PgQ: n/a (consumers read ticked batches; the ticker's period bounds the latency)."
        echo
        echo "| system | jobs/s (target) | jobs | received | p50 | p95 | p99 | max | waits by |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    } >>"$md"
    q "SELECT format('| %s | %s (%s) | %s | %s | %s ms | %s ms | %s ms | %s ms | %s |',
                     CASE variant WHEN 'queue-node' THEN 'queue (Node pg)' ELSE variant END,
                     r->>'jobs_per_s', r->>'target_rate', r->>'jobs', r->>'received',
                     r->>'p50_ms', r->>'p95_ms', r->>'p99_ms', r->>'max_ms',
                     CASE variant WHEN 'queue-node' THEN 'waiting claim' WHEN 'graphile-worker' THEN 'LISTEN/NOTIFY'
                                  WHEN 'bullmq' THEN 'blocking Redis command' ELSE 'polling every 0.5 s, up to 100 jobs a poll' END)
         FROM (SELECT variant, result AS r FROM bench_extra WHERE workload = 'wake_peer' ORDER BY ctid) x" >>"$md"
    echo "| PgQ | n/a | | | | | | | ticker |" >>"$md"
    q "SELECT format(E'\\nQU001 (a lost lease) in queue''s Node.js drains: %s errors in %s runs; '
                     'in its wake-up run: %s.', coalesce(sum((result->>'stale_leases')::int), 0), count(*),
                     coalesce((SELECT result->>'stale_leases' FROM bench_extra
                                WHERE workload = 'wake_peer' AND variant = 'queue-node'), 'not run'))
         FROM bench_extra WHERE workload = 'drain_stale_leases'" >>"$md"
    {
        echo
        echo "### Guarantees, as run here"
        echo
        echo "| system | lease | fencing | retries | history | store |"
        echo "|---|---|---|---|---|---|"
    } >>"$md"
    q "SELECT format('| %s | %s | %s | %s | %s | %s |', system, lease, fencing, retries, history, store)
         FROM ($peer_guarantees_sql) g ORDER BY ord" >>"$md"
}

# peers_json: a jsonb with the peers' results, for the JSON report.
peers_json_sql="
    jsonb_build_object(
        'versions', :'peer_versions',
        'summary', (SELECT jsonb_agg(s ORDER BY s.workload, s.clients DESC, s.system) FROM (
            SELECT workload, batch, clients, system, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY jobs_per_s)::numeric, 1) AS jobs_per_s,
                   round(avg(commits_per_job)::numeric, 4) AS commits_per_job,
                   round(avg(redis_cmds_per_job)::numeric, 4) AS redis_cmds_per_job, count(*) AS runs
              FROM bench_result WHERE pass = 'peers' GROUP BY 1, 2, 3, 4) s),
        'wake_latency', (SELECT jsonb_object_agg(variant, result) FROM bench_extra WHERE workload = 'wake_peer'),
        'drain_stale_leases', (SELECT jsonb_object_agg(variant, (result->>'stale_leases')::int)
                                 FROM bench_extra WHERE workload = 'drain_stale_leases'),
        'guarantees', (SELECT jsonb_agg(to_jsonb(g) - 'ord' ORDER BY g.ord) FROM ($peer_guarantees_sql) g))"
