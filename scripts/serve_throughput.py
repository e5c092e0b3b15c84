"""Aggregate generation throughput of an OpenAI-compatible server at several client counts.

Each client sends chat requests back to back (a short prompt, max_tokens tokens with ignore_eos so
every answer has the same length); aggregate tok/s = completion tokens of all clients / wall time.
Client counts are run interleaved (1 4 1 4 ...) and the median of the rounds is reported, so a
machine whose load changes over time affects every count alike.

    scripts/serve_throughput.py --url http://127.0.0.1:8080 --clients 1 4 --rounds 3
"""

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


def run(url, key, clients, requests, max_tokens):
    tokens = [0] * clients

    def worker(c):
        for i in range(requests):
            tokens[c] += one_request(url, key, max_tokens, c * 1000 + i)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(tokens) / (time.time() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--requests", type=int, default=2, help="requests per client per round")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    results = {c: [] for c in args.clients}
    for r in range(args.rounds):
        for c in args.clients:
            tps = run(args.url, args.api_key, c, args.requests, args.max_tokens)
            results[c].append(tps)
            print(f"round {r + 1}: {c} clients: {tps:.1f} tok/s", flush=True)
    # Ratios are taken within a round (neighbouring runs see the same machine load), then the median.
    first = args.clients[0]
    print(f"\n| clients | aggregate tok/s (median) | vs {first} client(s), median of per-round ratios |\n|---|---|---|")
    for c in args.clients:
        ratio = statistics.median(x / y for x, y in zip(results[c], results[first]))
        print(f"| {c} | {statistics.median(results[c]):.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
