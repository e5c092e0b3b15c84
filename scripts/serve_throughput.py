"""Aggregate generation throughput of an OpenAI-compatible server at several client counts.

Each client sends chat requests back to back (a short prompt, max_tokens tokens with ignore_eos so
every answer has the same length); aggregate tok/s = completion tokens of all clients / wall time.
Client counts are run interleaved (1 4 1 4 ...) and the median of the rounds is reported, so a
machine whose load changes over time affects every count alike.

    scripts/serve_throughput.py --url http://127.0.0.1:8080 --clients 1 4 --rounds 3 [--pid PID]

With --pid (the server's process id, same machine) it also reports tokens per CPU-second of the server:
completion tokens / (user + system time the server's threads used during the round). On a machine shared
with other work the wall-clock rate depends on how often the server's threads get a core; the CPU-time
rate counts only the time they ran (spinning in the thread pool's barrier included), so its ratio between
client counts says how much work batching saves, whatever the load.
"""

import os

import argparse
import json
import statistics
import threading
import time
import urllib.request


def one_request(url, key, max_tokens, i):
    body = {"messages": [{"role": "user", "content": f"Tell me a story about ferry number {i}."}],
            "max_tokens": max_tokens, "temperature": 0.7, "ignore_eos": True}
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(), headers)
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["usage"]["completion_tokens"]


def cpu_seconds(pid):
    """user + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url, key, clients, requests, max_tokens, pid):
    tokens = [0] * clients

    def worker(c):
        for i in range(requests):
            tokens[c] += one_request(url, key, max_tokens, c * 1000 + i)

    t0, c0 = time.time(), cpu_seconds(pid)
    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.time() - t0, cpu_seconds(pid) - c0
    return sum(tokens) / wall, (sum(tokens) / cpu if cpu > 0 else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--requests", type=int, default=2, help="requests per client per round")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pid", type=int, default=0, help="the server's process id: also report tok per CPU-second")
    args = ap.parse_args()
    if args.pid and not os.path.exists(f"/proc/{args.pid}/stat"):
        ap.error(f"--pid {args.pid}: no such process")
    results = {c: [] for c in args.clients}
    per_cpu = {c: [] for c in args.clients}
    for r in range(args.rounds):
        for c in args.clients:
            tps, tpc = run(args.url, args.api_key, c, args.requests, args.max_tokens, args.pid)
            results[c].append(tps)
            per_cpu[c].append(tpc)
            extra = f", {tpc:.1f} tok per CPU-s" if args.pid else ""
            print(f"round {r + 1}: {c} clients: {tps:.1f} tok/s{extra}", flush=True)
    # Ratios are taken within a round (neighbouring runs see the same machine load), then the median.
    first = args.clients[0]
    print(f"\n| clients | aggregate tok/s (median) | vs {first} client(s), median of per-round ratios |\n|---|---|---|")
    for c in args.clients:
        ratio = statistics.median(x / y for x, y in zip(results[c], results[first]))
        print(f"| {c} | {statistics.median(results[c]):.1f} | {ratio:.2f}x |")
    if args.pid and not all(x > 0 for v in per_cpu.values() for x in v):
        print(f"\nno CPU time measured for process {args.pid} in some rounds: is it the server's process id?")
    elif args.pid:
        print(f"\n| clients | tok per server CPU-second (median) | vs {first} client(s), median of per-round ratios |")
        print("|---|---|---|")
        for c in args.clients:
            ratio = statistics.median(x / y for x, y in zip(per_cpu[c], per_cpu[first]))
            print(f"| {c} | {statistics.median(per_cpu[c]):.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
