#!/usr/bin/env node
// Node.js drivers for bench/run.sh --peers: the same workloads as bench/*.sql,
// each through one system's own client library.
//
//   node bench.js SYSTEM WORKLOAD CLIENTS BATCH SECONDS [BACKLOG | RATE]
//
// SYSTEM:   pgboss (pg-boss: send/insert, fetch + complete),
//           graphile (graphile-worker: addJob/addJobs, run() with concurrency),
//           bullmq (BullMQ on Redis: add/addBulk, Worker with concurrency),
//           queue (this extension through pg: enqueue/enqueue_many, complete_and_claim)
// WORKLOAD: enqueue        CLIENTS loops, BATCH jobs per call, for SECONDS
//           drain          BACKLOG jobs preloaded, then CLIENTS workers take BATCH
//                          jobs at a time until the backlog is gone (or SECONDS)
//           wake           a producer at RATE jobs/s for SECONDS, CLIENTS workers
//                          waiting (or polling) for work; latency enqueue -> handler
// PostgreSQL: PGHOST (socket directory), PGPORT, PGUSER, BENCH_DB.
// Redis: REDIS_PORT (127.0.0.1).  Prints one JSON object on stdout.
'use strict';

const { performance } = require('node:perf_hooks');
const pg = require('pg');

const [system, workload, clientsArg, batchArg, secondsArg, extraArg] = process.argv.slice(2);
const clients = Number(clientsArg), batch = Number(batchArg), seconds = Number(secondsArg);
const extra = Number(extraArg || 0);
const db = process.env.BENCH_DB;
const pgConf = { host: process.env.PGHOST, port: Number(process.env.PGPORT),
                 user: process.env.PGUSER || 'postgres', database: db };
const redisConf = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT || 0),
                    maxRetriesPerRequest: null };
const QUEUE = workload === 'wake' ? 'wake' : 'bench';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const payload = (n) => ({ task: 'resize-image', n });
let seq = 0;

// --- counters around the measured phase: commits (PostgreSQL) or commands (Redis)
async function counter() {
    if (system === 'bullmq') {
        const IORedis = require('ioredis');
        const r = new IORedis(redisConf);
        return {
            async read() {
                const info = await r.info('stats');
                return Number(/total_commands_processed:(\d+)/.exec(info)[1]);
            },
            async close() { await r.quit(); },
        };
    }
    const c = new pg.Client(pgConf);
    await c.connect();
    return {
        async read() {
            await c.query('SELECT pg_stat_clear_snapshot()');
            const r = await c.query('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()');
            return Number(r.rows[0].xact_commit);
        },
        async close() { await c.end(); },
        query: (t, v) => c.query(t, v),
    };
}

// --- the systems: each returns { enqueue(n), preload(n), startWorkers(n, batch, onJob),
//     done(), reset(), close() }
async function pgboss() {
    const PgBoss = require('pg-boss');
    const boss = new PgBoss({ ...pgConf, max: Math.max(clients + 2, 10) });
    boss.on('error', (e) => { console.error('pg-boss:', e.message); });
    await boss.start();
    await boss.createQueue(QUEUE).catch(() => {});
    let stop = false; const loops = [];
    return {
        library: 'pg-boss ' + require('pg-boss/package.json').version,
        async enqueue(n, data) {
            if (n === 1) await boss.send(QUEUE, data || payload(seq++));
            else await boss.insert(Array.from({ length: n }, () => ({ name: QUEUE, data: payload(seq++) })));
        },
        async preload(n) {
            for (let i = 0; i < n; i += 1000) {
                await boss.insert(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: QUEUE, data: payload(seq++) })));
            }
        },
        // drain: documented fetch() + complete() loops, one per worker
        async drainWorkers(n, b) {
            for (let w = 0; w < n; w++) {
                loops.push((async () => {
                    while (!stop) {
                        const jobs = await boss.fetch(QUEUE, { batchSize: b });
                        if (!jobs || jobs.length === 0) return;
                        await boss.complete(QUEUE, jobs.map((j) => j.id));
                    }
                })());
            }
            return Promise.all(loops);
        },
        // wake: its worker API; work() polls, every 0.5 s at the least, so
        // each poll takes up to 100 jobs (at batch 1, 4 workers could take
        // only 8 jobs/s, and the row would measure that cap, not latency)
        async wakeWorkers(n, onJob) {
            for (let w = 0; w < n; w++) {
                await boss.work(QUEUE, { batchSize: 100, pollingIntervalSeconds: 0.5 },
                                async (jobs) => { for (const job of jobs) onJob(job.data); });
            }
        },
        stopWorkers() { stop = true; return Promise.all(loops); },
        async done(c) {
            const r = await c.query(`SELECT count(*) FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [QUEUE]);
            return Number(r.rows[0].count);
        },
        async count(c) {
            const r = await c.query(`SELECT count(*) FROM pgboss.job WHERE name = $1 AND state < 'completed'`, [QUEUE]);
            return Number(r.rows[0].count);
        },
        async close() { await boss.stop({ graceful: true, wait: true, timeout: 10000 }); },
    };
}

async function graphile() {
    const gw = require('graphile-worker');
    const quiet = new gw.Logger(() => (level, message) => { if (level === 'error') console.error('graphile-worker:', message); });
    const pool = new pg.Pool({ ...pgConf, max: Math.max(clients + 2, 10) });
    const utils = await gw.makeWorkerUtils({ pgPool: pool, logger: quiet });
    await utils.migrate();
    let runner = null;
    const run = async (n, b, handler) => {
        runner = await gw.run({
            pgPool: pool, concurrency: n, noHandleSignals: true, logger: quiet,
            pollInterval: 2000, taskList: { [QUEUE]: handler },
            // batch > 1: the documented batching (a local queue of b jobs, batched completions)
            preset: b > 1 ? { worker: { localQueue: { size: b }, completeJobBatchDelay: 0 } } : undefined,
        });
    };
    return {
        library: 'graphile-worker ' + require('graphile-worker/package.json').version,
        async enqueue(n, data) {
            if (n === 1) await utils.addJob(QUEUE, data || payload(seq++));
            else await utils.addJobs(Array.from({ length: n }, () => ({ identifier: QUEUE, payload: payload(seq++) })));
        },
        async preload(n) {
            for (let i = 0; i < n; i += 1000) {
                await utils.addJobs(Array.from({ length: Math.min(1000, n - i) }, () => ({ identifier: QUEUE, payload: payload(seq++) })));
            }
        },
        async drainWorkers(n, b) { await run(n, b, async () => {}); },
        async wakeWorkers(n, onJob) { await run(n, 1, async (p) => { onJob(p); }); },
        async stopWorkers() { if (runner) { await runner.stop(); runner = null; } },
        async done(c) { return null; },
        async count(c) {
            const r = await c.query(`SELECT count(*) FROM graphile_worker._private_jobs`);
            return Number(r.rows[0].count);
        },
        async close() { await utils.release(); await pool.end(); },
    };
}

async function bullmq() {
    const { Queue, Worker } = require('bullmq');
    const queue = new Queue(QUEUE, { connection: redisConf });
    let workers = [];
    return {
        library: 'bullmq ' + require('bullmq/package.json').version,
        async enqueue(n, data) {
            if (n === 1) await queue.add(QUEUE, data || payload(seq++));
            else await queue.addBulk(Array.from({ length: n }, () => ({ name: QUEUE, data: payload(seq++) })));
        },
        async preload(n) {
            for (let i = 0; i < n; i += 1000) {
                await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: QUEUE, data: payload(seq++) })));
            }
        },
        // one Worker with concurrency n (batches are a BullMQ Pro feature: batch 1 only)
        async drainWorkers(n, b) {
            workers.push(new Worker(QUEUE, async () => {}, { connection: redisConf, concurrency: n }));
        },
        async wakeWorkers(n, onJob) {
            workers.push(new Worker(QUEUE, async (job) => { onJob(job.data); }, { connection: redisConf, concurrency: n }));
        },
        async stopWorkers() { await Promise.all(workers.map((w) => w.close())); workers = []; },
        async done() { return queue.getCompletedCount(); },
        async count() {
            const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
            return Object.values(c).reduce((a, b) => a + b, 0);
        },
        async close() { await queue.close(); },
    };
}

async function queueExt() {
    const pool = new pg.Pool({ ...pgConf, max: Math.max(clients + 2, 10) });
    let stop = false; const loops = []; let staleLeases = 0;
    // The documented worker loop: complete_and_claim completes the jobs the
    // last turn claimed and claims the next ones (one round trip, one
    // commit); when it finds none, a claim with a wait sleeps until work
    // arrives (wake), or the loop ends (drain).
    const claimLoop = async (w, b, wait, onJob) => {
        const c = await pool.connect();
        let held = [];
        try {
            while (!stop) {
                let r;
                try {
                    r = await c.query({
                        name: 'complete_and_claim',
                        text: 'SELECT job_id, lease_token, payload FROM queue.complete_and_claim($1::bigint[], $2::uuid[], $3, $4, $5)',
                        values: [held.map((x) => x.job_id), held.map((x) => x.lease_token), QUEUE, 'node-' + w, b] });
                } catch (e) {
                    // QU001: a held lease was lost (another worker holds the
                    // job now); as a worker should, drop the jobs and go on.
                    // Counted and reported, never hidden.
                    if (e.code !== 'QU001') throw e;
                    staleLeases++;
                    console.error('queue-node: ' + e.message + ' (' + e.detail + ')');
                    held = [];
                    continue;
                }
                held = [];
                if (r.rows.length === 0) {
                    if (!wait) return;
                    r = await c.query({
                        name: 'claim',
                        text: `SELECT job_id, lease_token, payload FROM queue.claim($1, $2, $3, wait => '1 second')`,
                        values: [QUEUE, 'node-' + w, b] });
                    if (r.rows.length === 0) continue;
                }
                if (onJob) for (const row of r.rows) onJob(row.payload);
                held = r.rows;
            }
            if (held.length > 0) {
                await c.query({ name: 'complete_many', text: 'SELECT queue.complete_many($1::bigint[], $2::uuid[])',
                                values: [held.map((x) => x.job_id), held.map((x) => x.lease_token)] });
            }
        } finally { c.release(); }
    };
    const enqueueMany = (n) => pool.query({ name: 'enqueue_many',
        text: 'SELECT count(*) FROM queue.enqueue_many($1, $2::jsonb)',
        values: [QUEUE, JSON.stringify(Array.from({ length: n }, () => ({ payload: payload(seq++) })))] });
    return {
        library: 'pg ' + require('pg/package.json').version,
        staleLeases: () => staleLeases,
        async enqueue(n, data) {
            if (n === 1) await pool.query({ name: 'enqueue', text: 'SELECT queue.enqueue($1, $2::jsonb)',
                                            values: [QUEUE, JSON.stringify(data || payload(seq++))] });
            else await enqueueMany(n);
        },
        async preload(n) { for (let i = 0; i < n; i += 10000) await enqueueMany(Math.min(10000, n - i)); },
        async drainWorkers(n, b) {
            for (let w = 0; w < n; w++) loops.push(claimLoop(w, b, false, null));
            return Promise.all(loops);
        },
        async wakeWorkers(n, onJob) { for (let w = 0; w < n; w++) loops.push(claimLoop(w, 1, true, onJob)); },
        stopWorkers() { stop = true; return Promise.all(loops); },
        async done(c) {
            const r = await c.query(`SELECT count(*) FROM queue.job_archive WHERE state = 'completed'`);
            return Number(r.rows[0].count);
        },
        async count(c) { const r = await c.query(`SELECT count(*) FROM queue.job`); return Number(r.rows[0].count); },
        async close() { await pool.end(); },
    };
}

const makers = { pgboss, graphile, bullmq, queue: queueExt };

function pct(sorted, p) {
    if (sorted.length === 0) return null;
    const i = (sorted.length - 1) * p, lo = Math.floor(i), hi = Math.ceil(i);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}
const r2 = (x) => (x === null ? null : Math.round(x * 100) / 100);

async function main() {
    const sys = await makers[system]();
    const ctr = await counter();
    const out = { system, library: sys.library, workload, clients, batch };
    if (workload === 'enqueue') {
        const c0 = await ctr.read();
        const t0 = performance.now(), end = t0 + seconds * 1000;
        let calls = 0;
        await Promise.all(Array.from({ length: clients }, async () => {
            while (performance.now() < end) { await sys.enqueue(batch); calls++; }
        }));
        const s = (performance.now() - t0) / 1000;
        await sys.close();
        await sleep(300);
        const c1 = await ctr.read();
        Object.assign(out, { seconds: s, jobs: calls * batch, counter_delta: c1 - c0 - 2 });
    } else if (workload === 'drain') {
        await sys.preload(extra);
        if (ctr.query && system === 'pgboss') await ctr.query('VACUUM ANALYZE pgboss.job');
        if (ctr.query && system === 'graphile') await ctr.query('VACUUM ANALYZE graphile_worker._private_jobs');
        if (ctr.query && system === 'queue') await ctr.query('VACUUM ANALYZE queue.job');
        if (ctr.query) await ctr.query('CHECKPOINT');
        const c0 = await ctr.read();
        const t0 = performance.now(), end = t0 + seconds * 1000;
        let left = extra, tEnd = null;
        const run = sys.drainWorkers(clients, batch);
        // the loops that stop by themselves (fetch/claim came back empty) end `run`;
        // the others are watched: the backlog is gone when nothing is left
        let finished = false;
        Promise.resolve(run).then(() => { if (system === 'pgboss' || system === 'queue') finished = true; });
        while (performance.now() < end && !finished) {
            await sleep(50);
            if (system === 'graphile' || system === 'bullmq') {
                left = await sys.count(ctr);
                if (left === 0) finished = true;
            }
        }
        tEnd = performance.now();
        await sys.stopWorkers();
        const s = (tEnd - t0) / 1000;
        left = await sys.count(ctr);
        let jobs = await sys.done(ctr);
        if (jobs === null) jobs = extra - left;
        await sys.close();
        await sleep(300);
        const c1 = await ctr.read();
        if (sys.staleLeases) out.stale_leases = sys.staleLeases();
        Object.assign(out, { seconds: s, backlog: extra, jobs, left, drained: left === 0,
                             counter_delta: c1 - c0 - 2 });
    } else if (workload === 'wake') {
        const lat = [];
        await sys.wakeWorkers(clients, (p) => { lat.push(performance.now() - p.t); });
        await sleep(1000);
        const rate = extra, t0 = performance.now(), end = t0 + seconds * 1000;
        let sent = 0; const pending = new Set();
        while (performance.now() < end) {
            const due = t0 + (sent * 1000) / rate;
            const now = performance.now();
            if (due > now) { await sleep(Math.max(0, due - now)); continue; }
            // at most 2 enqueues in flight, like pgbench -R with 2 clients
            if (pending.size >= 2) { await Promise.race(pending); continue; }
            const prom = sys.enqueue(1, { task: 'ping', t: performance.now() });
            pending.add(prom); prom.finally(() => pending.delete(prom));
            sent++;
        }
        await Promise.all(pending);
        const deadline = performance.now() + 5000;
        while (lat.length < sent && performance.now() < deadline) await sleep(50);
        await sys.stopWorkers();
        await sys.close();
        lat.sort((a, b) => a - b);
        if (sys.staleLeases) out.stale_leases = sys.staleLeases();
        Object.assign(out, { seconds, target_rate: rate, jobs: sent, received: lat.length,
                             jobs_per_s: Math.round((sent / seconds) * 10) / 10,
                             p50_ms: r2(pct(lat, 0.5)), p95_ms: r2(pct(lat, 0.95)),
                             p99_ms: r2(pct(lat, 0.99)), max_ms: r2(lat[lat.length - 1] ?? null) });
    } else {
        throw new Error('unknown workload ' + workload);
    }
    await ctr.close();
    console.log(JSON.stringify(out));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
