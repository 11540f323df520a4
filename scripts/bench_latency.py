"""The writer and the arithmetic of `scripts/bench latency` (run by it, with pymongo).

Each client program watches DB.lat0 .. DB.lat{K-1}, prints `ready`, and at the end one line
`k n unix_ns` per event it received. This script inserts `{n}` documents with w:majority, notes
the wall-clock time each insert was acknowledged, and subtracts: latency = arrival - ack, both read
from the same clock (CLOCK_REALTIME) on the same machine.
"""
import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

import pymongo
from bson.int64 import Int64
from pymongo.write_concern import WriteConcern

DB = "mongowire_bench_latency"
CLIENTS = ["mongowire", "rust-official"]
READY_TIMEOUT_S = 120
# Pause after each single insert (one stream) and after each round (many streams), so events do
# not queue behind one another and each measures the path from an idle, waiting stream.
PAUSE_ONE_S = 0.005
PAUSE_ROUND_S = 0.1


def log(message):
    print(message, file=sys.stderr, flush=True)


def thread_cpu(pid):
    """CPU time of each thread of a running process, in seconds: the nanoseconds the scheduler
    ran it (/proc/PID/task/TID/schedstat), finer than /proc/PID/stat's clock ticks."""
    times = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                times[task] = int(f.read().split()[0]) / 1e9
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return times


def cpu_since(pid, before):
    """CPU the process's threads used since the `thread_cpu` snapshot `before`."""
    return sum(t - before.get(task, 0.0) for task, t in thread_cpu(pid).items())


def connections(admin):
    return admin.command("serverStatus")["connections"]["current"]


def run_client(command, writer, streams, rounds):
    """Runs one client through `rounds` rounds of one insert per stream; returns its figures."""
    admin = writer.admin
    database = writer.get_database(DB, write_concern=WriteConcern(w="majority"))
    before = connections(admin)
    child = subprocess.Popen(command + ["--db", DB, "--streams", str(streams), "--n", str(streams * rounds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # A silent client must not hang the benchmark: give up on it after READY_TIMEOUT_S.
    timer = threading.Timer(READY_TIMEOUT_S, child.kill)
    timer.start()
    line = child.stdout.readline().decode().strip()
    timer.cancel()
    if line != "ready":
        child.kill()
        raise SystemExit(f"{command[0]} did not get ready: {line!r} {child.stderr.read().decode()}")
    held = connections(admin) - before
    cpu_at_ready = thread_cpu(child.pid)
    acks = {}
    collections = [database[f"lat{k}"] for k in range(streams)]
    for n in range(rounds):
        for k, collection in enumerate(collections):
            collection.insert_one({"n": Int64(n)})
            acks[(k, n)] = time.time_ns()
            if streams == 1:
                time.sleep(PAUSE_ONE_S)
        held = max(held, connections(admin) - before)
        if streams > 1:
            time.sleep(PAUSE_ROUND_S)
    cpu_flowing = cpu_since(child.pid, cpu_at_ready)
    timer = threading.Timer(READY_TIMEOUT_S, child.kill)
    timer.start()
    out, err = child.communicate()
    timer.cancel()
    if child.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({child.returncode}): {err.decode(errors='replace')}")
    latencies = []
    seen = set()
    for row in out.decode().split("\n"):
        if not row:
            continue
        k, n, at = (int(x) for x in row.split())
        if (k, n) in seen:
            raise SystemExit(f"{command[0]} saw event {n} of stream {k} twice")
        seen.add((k, n))
        latencies.append((at - acks[(k, n)]) / 1e6)
    if len(seen) != len(acks):
        raise SystemExit(f"{command[0]} saw {len(seen)} of {len(acks)} events")
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max": latencies[-1],
        "connections": held,
        "cpu_ms": cpu_flowing * 1000,
    }


def scenario(title, commands, writer, streams, rounds, runs):
    writer.drop_database(DB)
    for k in range(streams):
        writer[DB].create_collection(f"lat{k}")
    results = {name: [] for name in commands}
    for run in range(runs):
        names = CLIENTS[run % len(CLIENTS):] + CLIENTS[:run % len(CLIENTS)]
        for name in names:
            results[name].append(run_client(commands[name], writer, streams, rounds))
        log(f"{title}: run {run + 1} of {runs} done")
    print(f"\n{title}: {streams * rounds} events, {runs} runs per client, medians of the runs")
    print(f"{'client':<16}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'connections':>13}{'CPU ms':>9}")
    for name, rows in results.items():
        m = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        print(f"{name:<16}{m['p50']:>9.2f}{m['p99']:>9.2f}{m['max']:>9.2f}{m['connections']:>13.0f}{m['cpu_ms']:>9.1f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--inserts", type=int, required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--mongowire", required=True)
    parser.add_argument("--rust-official", required=True)
    parser.add_argument("--scenarios", default="one,many")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    writer = pymongo.MongoClient(args.uri)
    if "one" in scenarios:
        scenario("one stream, single inserts", commands(args, args.uri), writer, 1, args.inserts, args.runs)
    if "many" in scenarios:
        # Every waiting stream holds a connection for its getMore, so the pool must have room for
        # all of them: the official driver's default maxPoolSize (10) cannot even open 100
        # streams in minutes, as its waiting getMores take every connection in turn.
        pool = 2 * args.streams
        uri = args.uri + ("&" if "?" in args.uri else "/?") + f"maxPoolSize={pool}"
        rounds = max(1, args.inserts // args.streams)
        title = f"{args.streams} streams on one client (maxPoolSize={pool})"
        scenario(title, commands(args, uri), writer, args.streams, rounds, args.runs)
    writer.drop_database(DB)


def commands(args, uri):
    return {
        "mongowire": [args.mongowire, "--uri", uri],
        "rust-official": [args.rust_official, "--uri", uri],
    }


if __name__ == "__main__":
    main()
