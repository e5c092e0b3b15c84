"""ferry bench serve end to end, against a `ferry serve` on the default model started here.

Small runs (-r 2, a few max_tokens) so it stays fast. Checks: the JSON output's shape and numbers
(each scenario, the first run discarded, TTFT and decode rate from streaming, --concurrency 1,2),
the Markdown table, --no-stream (no TTFT), --vs against the same server twice (interleaved runs and
ratios), and the errors: an unreachable URL and an HTTP error (a missing API key) exit 1 with a
clear message, usage errors exit 2.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import Server, check, failures  # noqa: E402

KEY = "bench-key"


def bench(ferry, args, timeout=120):
    p = subprocess.run([ferry, "bench", "serve"] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def stat_ok(s):
    return isinstance(s, dict) and all(isinstance(s.get(k), (int, float)) for k in ("mean", "sd", "median"))


def test_json(ferry, url):
    rc, out, err = bench(ferry, ["--url", url + "/v1", "--api-key", KEY, "-r", "2", "-n", "6",
                                 "--scenarios", "short,multi-turn", "-o", "json"])
    check(rc == 0, f"bench serve json: rc {rc}: {err[-500:]}")
    if rc != 0:
        return
    j = json.loads(out)
    s = j["settings"]
    check(s["max_tokens"] == 6 and s["temperature"] == 0.7 and s["runs"] == 2 and s["discarded"] == 1
          and s["stream"] is True and s["servers"][0]["model"] == "smollm", f"settings: {s}")
    rows = j["results"]
    check([(r["scenario"], r["concurrency"]) for r in rows] == [("short", 1), ("multi-turn", 1)], f"rows: {rows}")
    for r in rows:
        what = f"{r['scenario']} x{r['concurrency']}"
        check(stat_ok(r["tok_s"]) and r["tok_s"]["mean"] > 0, f"{what}: tok_s {r['tok_s']}")
        check(stat_ok(r["ttft_ms"]) and r["ttft_ms"]["mean"] > 0, f"{what}: ttft {r['ttft_ms']}")
        check(stat_ok(r["decode_tok_s"]) and r["decode_tok_s"]["mean"] > 0, f"{what}: decode {r['decode_tok_s']}")
        check(len(r["runs"]) == 1, f"{what}: one kept run of two")
        run = r["runs"][0]
        turns = 5 if r["scenario"] == "multi-turn" else 1
        check(run["requests"] == turns * r["concurrency"], f"{what}: requests {run['requests']}")
        check(0 < run["completion_tokens"] <= 6 and run["prompt_tokens"] > 0, f"{what}: tokens {run}")
        check(abs(run["tok_s"] - run["completion_tokens"] * run["requests"] / (run["wall_ms"] / 1000)) < 1e-6 * run["tok_s"] + 1e-9,
              f"{what}: tok/s = tokens / wall time")
    # The multi-turn conversation reuses the cache: later turns start from the previous prompt.
    mt = rows[-1]["runs"][0]
    check(mt["cached_tokens"] > 0, f"multi-turn cached tokens: {mt}")
    check("bench serve: A short x1 run 1/2" in err and "(discarded)" in err, f"progress on stderr: {err[:300]}")
    # Several clients: aggregate tok/s over the run's wall time, and the scaling against one client.
    rc, out, err = bench(ferry, ["--url", url, "--api-key", KEY, "-r", "2", "-n", "4", "--scenarios", "short",
                                 "--concurrency", "1,2", "-o", "json"])
    check(rc == 0, f"bench serve --concurrency: rc {rc}: {err[-500:]}")
    if rc != 0:
        return
    rows = json.loads(out)["results"]
    check([r["concurrency"] for r in rows] == [1, 2] and rows[1]["runs"][0]["requests"] == 2, f"concurrency rows: {rows}")
    # One kept run of 4-token requests: a load spike on a shared machine can move it several-fold, so the
    # bounds only catch a broken computation (0, inf, a wrong unit).
    check(rows[0]["scaling"]["median"] == 1.0 and 0.05 < rows[1]["scaling"]["median"] < 20, f"scaling: {rows}")
    order = [ln.split()[4] for ln in err.splitlines() if ln.startswith("bench serve: ")]
    check(order == ["x1", "x2", "x1", "x2"], f"concurrency levels interleaved: {order}")


def test_md_no_stream_vs(ferry, url):
    rc, out, err = bench(ferry, ["--url", url, "--api-key", KEY, "-r", "1", "-n", "4", "--scenarios", "short",
                                 "--no-stream"])
    check(rc == 0, f"bench serve md: rc {rc}: {err[-500:]}")
    lines = [ln for ln in out.splitlines() if ln.startswith("| A | short | 1 |")]
    check(len(lines) == 1 and lines[0].split("|")[5].strip() == "-", f"md row without TTFT: {out}")
    check("| server | scenario | clients | tok/s | TTFT ms | decode tok/s |" in out, f"md header: {out}")
    rc, out, err = bench(ferry, ["--url", url, "--vs", url + "/v1/", "--api-key", KEY, "-r", "3", "-n", "4",
                                 "--scenarios", "short", "-o", "json"])
    check(rc == 0, f"bench serve --vs: rc {rc}: {err[-500:]}")
    if rc != 0:
        return
    j = json.loads(out)
    check([r["server"] for r in j["results"]] == ["A", "B"] and all(len(r["runs"]) == 2 for r in j["results"]),
          f"--vs rows: {j['results']}")
    ratio = j["ratios"][0]
    check(ratio["scenario"] == "short" and isinstance(ratio["tok_s"], float) and 0.05 < ratio["tok_s"] < 20,
          f"--vs ratio: {ratio}")
    order = [ln.split()[2] for ln in err.splitlines() if ln.startswith("bench serve: ")]
    check(order == ["A", "B", "A", "B", "A", "B"], f"--vs alternates A B: {order}")
    rc, out, _ = bench(ferry, ["--url", url, "--vs", url, "--api-key", KEY, "-r", "1", "-n", "2",
                               "--scenarios", "short"])
    check(rc == 0 and "| scenario | clients | tok/s A/B | TTFT A/B | decode tok/s A/B |" in out, f"md ratios: {out}")


def test_errors(ferry, url):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    rc, out, err = bench(ferry, ["--url", f"http://127.0.0.1:{free}", "-r", "1", "-n", "2"])
    check(rc == 1 and "cannot reach http://127.0.0.1:" in err and out == "", f"unreachable: rc {rc} {err}")
    rc, _, err = bench(ferry, ["--url", url, "-r", "1", "-n", "2", "--scenarios", "short"])
    check(rc == 1 and "HTTP 401" in err, f"missing key: rc {rc} {err}")
    rc, _, err = bench(ferry, ["--url", url, "--api-key", "wrong", "-r", "1", "-n", "2"])
    check(rc == 1 and "HTTP 401" in err, f"wrong key: rc {rc} {err}")
    for bad in (["--url", "127.0.0.1:8080"], ["-o", "csv"], ["--scenarios", "short,huge"], ["--concurrency", "0"],
                ["--bogus"], ["-r", "0"]):
        rc, _, err = bench(ferry, bad)
        check(rc == 2 and len(err.strip().splitlines()) == 1, f"usage {bad} exits 2 with one line: rc {rc} {err}")
    rc, out, _ = bench(ferry, ["--help"])
    check(rc == 0 and "--concurrency" in out and "--vs" in out and "usage: ferry bench serve" in out, "bench serve --help")
    # `ferry bench` alone is still llama-bench's.
    p = subprocess.run([ferry, "bench", "--help"], capture_output=True, text=True)
    check(p.returncode == 0 and "--concurrency" not in p.stdout and "-pg" in p.stdout, "ferry bench --help unchanged")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    args = ap.parse_args()
    srv = Server(args.ferry, ["-np", "2", "-c", "4096", "--api-key", KEY, "-a", "smollm"])
    try:
        for name, fn in [("json", lambda: test_json(args.ferry, srv.url())),
                         ("md, no-stream, vs", lambda: test_md_no_stream_vs(args.ferry, srv.url())),
                         ("errors", lambda: test_errors(args.ferry, srv.url()))]:
            t0 = time.time()
            fn()
            print(f"{name}: {time.time() - t0:.1f} s", flush=True)
    finally:
        srv.stop()
    if failures:
        print(f"{len(failures)} checks failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
