"""`ferry bench` end to end on the golden tiny llama (F16, 2 layers): output formats, the bytes-per-token
accounting against the tensor sizes the PyPI gguf package reads from the file, usage errors, Ctrl-C,
--bandwidth, and --vs-llama-cpp both with llama-cpp-python (the .venv) and without it (a Python that
lacks the package). Timings are never checked: only that they exist and are positive.

usage: test_bench.py --ferry build/bin/ferry
"""
import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "tests/data/models/llama-F16.gguf")
# llama-bench's field names that ferry bench shares, then ferry's own (docs/benchmarks.md, bench_output.cpp).
FIELDS = ["cpu_info", "backends", "model_filename", "model_type", "model_size", "model_n_params", "n_batch",
          "n_ubatch", "n_threads", "type_k", "type_v", "flash_attn", "use_mmap", "n_prompt", "n_gen", "n_depth",
          "n_parallel", "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts",
          "weight_bytes_per_token", "expert_bytes_per_token", "kv_bytes_per_token", "achieved_gbs", "bandwidth_gbs",
          "bandwidth_pct", "peak_rss_bytes"]
LLAMA_FIELDS = ["llama_cpp_version", "llama_cpp_avg_ts", "llama_cpp_stddev_ts", "llama_cpp_samples_ns", "ratio"]

results = {"passed": 0, "failed": 0}


def check(ok, what, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok' if ok else 'FAIL'}: {what}" + ("" if ok else f" {detail}"))


def bench(ferry, *args, env=None):
    cmd = [ferry, "bench", "-m", MODEL, "-t", "1", "--bandwidth-gbs", "10", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)


def expected_bytes():
    """Weights a decode step reads: every tensor once, except the token embedding (one row); the KV bytes
    of one cell (all layers and KV heads, f16 K and V)."""
    r = gguf.GGUFReader(MODEL)
    weights = 0
    for t in r.tensors:
        if t.name == "token_embd.weight":
            weights += int(t.n_bytes) // int(t.shape[1])
        else:
            weights += int(t.n_bytes)
    field = lambda k: int(r.fields[k].parts[-1][0])
    n_layer, n_head, n_head_kv = field("llama.block_count"), field("llama.attention.head_count"), \
        field("llama.attention.head_count_kv")
    head_dim = field("llama.embedding_length") // n_head
    kv_cell = n_layer * n_head_kv * head_dim * 2 * 2
    return weights, kv_cell


def test_json_and_bytes(ferry):
    out = bench(ferry, "-p", "16", "-n", "4", "-d", "0,8", "-r", "2", "-o", "json")
    check(out.returncode == 0, "json run exits 0", out.stderr[-500:])
    try:
        rows = json.loads(out.stdout)
    except json.JSONDecodeError as e:
        check(False, "json parses", f"{e}: {out.stdout[:300]!r}")
        return
    check(len(rows) == 4, "json has one row per test (pp16, tg4, each at d0 and d8)", str(len(rows)))
    for row in rows:
        missing = [f for f in FIELDS if f not in row]
        check(not missing, f"row {row.get('n_prompt')}/{row.get('n_gen')}@{row.get('n_depth')} has every field",
              str(missing))
        check(len(row["samples_ns"]) == 2 and all(v > 0 for v in row["samples_ns"]) and row["avg_ts"] > 0,
              "two positive samples and a positive mean", str(row["samples_ns"]))
        check(row["model_type"] == "llama 1M F16" and row["n_threads"] == 1 and row["type_k"] == "f16",
              "model_type, threads and KV type", f"{row['model_type']!r} {row['n_threads']} {row['type_k']}")
    weights, kv_cell = expected_bytes()
    for row in rows:
        if row["n_gen"] == 0:
            check(row["weight_bytes_per_token"] == 0, "prompt rows carry no bytes per token")
            continue
        d = row["n_depth"]
        # Token i of the 4 sees d + i + 1 cells.
        kv = kv_cell * sum(d + i + 1 for i in range(4)) / 4
        check(row["weight_bytes_per_token"] == weights, f"tg4@d{d}: weight bytes per token == the tensors read",
              f"{row['weight_bytes_per_token']} vs {weights}")
        check(row["kv_bytes_per_token"] == kv, f"tg4@d{d}: KV bytes per token == the cells seen",
              f"{row['kv_bytes_per_token']} vs {kv}")
        gbs = (weights + kv) * row["avg_ts"] / 1e9
        check(abs(row["achieved_gbs"] - gbs) < 1e-9 * max(1, gbs) and
              abs(row["bandwidth_pct"] - 100 * gbs / 10) < 1e-6, "GB/s and % of --bandwidth-gbs")


def test_moe_bytes(ferry):
    """A mixture of experts (the golden tiny qwen3moe): a decode token reads the non-expert tensors, the
    embedding row, and per layer the n_expert_used chosen experts' gate, up and down matrices; md adds the
    experts/tok column, json expert_bytes_per_token."""
    path = os.path.join(ROOT, "tests/data/models/qwen3moe-F16.gguf")
    r = gguf.GGUFReader(path)
    n_expert = int(r.fields["qwen3moe.expert_count"].parts[-1][0])
    k = int(r.fields["qwen3moe.expert_used_count"].parts[-1][0])
    dense = experts = 0
    for t in r.tensors:
        if t.name == "token_embd.weight":
            dense += int(t.n_bytes) // int(t.shape[1])
        elif t.name.endswith("_exps.weight"):
            experts += int(t.n_bytes) // n_expert * k
        else:
            dense += int(t.n_bytes)
    out = subprocess.run([ferry, "bench", "-m", path, "-t", "1", "--bandwidth-gbs", "10", "-p", "0", "-n", "3",
                          "-r", "1", "-o", "json"], capture_output=True, text=True, cwd=ROOT)
    rows = json.loads(out.stdout) if out.returncode == 0 else []
    check(len(rows) == 1 and rows[0]["expert_bytes_per_token"] == experts and
          rows[0]["weight_bytes_per_token"] == dense + experts,
          "qwen3moe tg3: weight bytes = non-expert tensors + k chosen experts per layer",
          f"{[(x['weight_bytes_per_token'], x['expert_bytes_per_token']) for x in rows]} vs {dense + experts}, "
          f"{experts} {out.stderr[-300:]}")
    out = subprocess.run([ferry, "bench", "-m", path, "-t", "1", "--bandwidth-gbs", "10", "-p", "0", "-n", "2",
                          "-r", "1"], capture_output=True, text=True, cwd=ROOT)
    head = [c.strip() for c in out.stdout.splitlines()[0].strip("|").split("|")] if out.stdout else []
    check("experts/tok" in head and head.index("experts/tok") == head.index("weights/tok") + 1,
          "md: experts/tok after weights/tok for a MoE model", str(head))
    out = bench(ferry, "-p", "0", "-n", "2", "-r", "1")
    check("experts/tok" not in out.stdout, "md: no experts/tok column for a dense model", out.stdout[:300])


def test_parallel(ferry):
    """-np: tg tests with several sequences decoding side by side; t/s is their aggregate, a step reads the
    weights once for all of them (the embedding one row per token), and each sequence's token i sees its own
    d + i + 1 cells."""
    out = bench(ferry, "-p", "0", "-n", "4", "-np", "1,3", "-d", "0,5", "-r", "2", "-o", "json")
    rows = json.loads(out.stdout) if out.returncode == 0 else []
    check([(r["n_parallel"], r["n_depth"]) for r in rows] == [(1, 0), (3, 0), (1, 5), (3, 5)],
          "-np 1,3 -d 0,5: a row per depth and sequence count", f"{out.stderr[-300:]} {out.stdout[:300]}")
    weights, kv_cell = expected_bytes()
    embd_row = next(int(t.n_bytes) // int(t.shape[1]) for t in gguf.GGUFReader(MODEL).tensors
                    if t.name == "token_embd.weight")
    for r in rows:
        np_, d = r["n_parallel"], r["n_depth"]
        want = (weights - embd_row) / np_ + embd_row
        check(abs(r["weight_bytes_per_token"] - want) < 1e-6 * want,
              f"tg4 x{np_} @ d{d}: weight bytes per token == the tensors / sequences",
              f"{r['weight_bytes_per_token']} vs {want}")
        kv = kv_cell * sum(d + i + 1 for i in range(4)) / 4
        check(r["kv_bytes_per_token"] == kv, f"tg4 x{np_} @ d{d}: KV bytes per token == each sequence's cells",
              f"{r['kv_bytes_per_token']} vs {kv}")
        # avg_ts counts every sequence's tokens: n_parallel * 4 per sample.
        ts = [np_ * 4 * 1e9 / ns for ns in r["samples_ns"]]
        check(all(abs(a - b) < 1e-6 * b for a, b in zip(r["samples_ts"], ts)), f"tg4 x{np_}: t/s of all sequences",
              f"{r['samples_ts']} vs {ts}")
    out = bench(ferry, "-p", "0", "-n", "2", "-np", "2", "-r", "1")
    check(out.returncode == 0 and "tg2 x2" in out.stdout, "md names a parallel test 'tg2 x2'", out.stdout[-300:])
    out = bench(ferry, "-np", "0")
    check(out.returncode == 2 and "-np" in out.stderr, "-np 0: a usage error", out.stderr)


def test_csv_md_jsonl(ferry):
    out = bench(ferry, "-p", "8", "-n", "2", "-r", "1", "-o", "csv")
    lines = out.stdout.splitlines()
    check(out.returncode == 0 and len(lines) == 3, "csv: a header and two rows", out.stdout[:300])
    if lines:
        check(lines[0].split(",") == FIELDS, "csv header = the json fields", lines[0])
    out = bench(ferry, "-p", "8", "-n", "2", "-pg", "8,2", "-r", "1", "-ctk", "q8_0", "-o", "md")
    lines = out.stdout.splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")] if lines else []
    check(head[:5] == ["model", "size", "params", "backend", "threads"] and "type_k" in head and
          head[head.index("type_k") + 1:head.index("type_k") + 3] == ["test", "t/s"] and "type_v" not in head,
          "md header: llama-bench's columns, type_k shown only because it differs", str(head))
    tests = [r.split("|")[head.index("test") + 1].strip() for r in lines[2:] if r.startswith("|")]
    check(tests == ["pp8", "tg2", "pp8+tg2"], "md test names", str(tests))
    check(lines[-1] == "% bw: of 10.00 GB/s", "md ends with the bandwidth line", lines[-1:])
    out = bench(ferry, "-p", "0", "-n", "2", "-d", "4", "-r", "1", "-o", "jsonl")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    check(len(rows) == 1 and rows[0]["n_depth"] == 4, "jsonl: one object per line", out.stdout[:200])
    out = bench(ferry, "-p", "0", "-n", "2", "-d", "4", "-r", "1")
    check("tg2 @ d4" in out.stdout, "md names a depth test 'tg2 @ d4'", out.stdout[-300:])


def test_usage_errors(ferry):
    for args, says in [(["-p", "1,,2"], "item 2 of the comma list is empty"), (["--bogus"], "unknown argument"),
                       (["-o", "xml"], "expected md, csv, json or jsonl"), (["-p", "0", "-n", "0"], "nothing to measure"),
                       (["-ctv", "q8_0", "-fa", "0"], "needs flash attention")]:
        out = bench(ferry, *args)
        check(out.returncode == 2 and says in out.stderr and out.stderr.count("\n") == 1 and not out.stdout,
              f"{' '.join(args)}: exit 2, one line", f"{out.returncode} {out.stderr!r}")
    out = subprocess.run([ferry, "bench", "-m", "/nonexistent.gguf", "--bandwidth-gbs", "1"], capture_output=True,
                         text=True)
    check(out.returncode == 1 and "nonexistent" in out.stderr, "a missing model: exit 1 naming it", out.stderr)


def test_ctrl_c(ferry):
    # tg8 finishes at once; tg200000 would take minutes: Ctrl-C during it ends the run with tg8's row.
    proc = subprocess.Popen([ferry, "bench", "-m", MODEL, "-t", "1", "--bandwidth-gbs", "10", "-p", "0", "-n",
                             "8,200000", "-r", "1", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    # The first row's closing brace says tg8 is done.
    buf = ""
    deadline = time.time() + 60
    while "}" not in buf and time.time() < deadline:
        ch = proc.stdout.read(1)
        if not ch:
            break
        buf += ch
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, err = proc.communicate()
    try:
        rows = json.loads(buf + rest)
    except json.JSONDecodeError:
        rows = None
    check(proc.returncode == 130 and rows is not None and len(rows) == 1 and rows[0]["n_gen"] == 8 and
          "interrupted; 1 test finished" in err, "Ctrl-C: exit 130, a valid JSON array of the finished row",
          f"{proc.returncode} {(buf + rest)[-200:]!r} {err[-200:]!r}")


def test_bandwidth(ferry):
    out = subprocess.run([ferry, "bench", "--bandwidth", "-t", "1"], capture_output=True, text=True)
    ok = out.returncode == 0 and out.stdout.startswith("memory bandwidth: read ")
    check(ok, "--bandwidth prints the probe", out.stdout + out.stderr)
    if ok:
        figures = [float(w) for w in out.stdout.replace(",", " ").split() if w.replace(".", "").isdigit()]
        check(figures[0] > 0 and figures[1] > 0, "read and triad GB/s are positive", out.stdout)


def test_vs_llama_cpp(ferry):
    env = dict(os.environ, FERRY_PYTHON=sys.executable)
    out = bench(ferry, "-p", "8", "-n", "2", "-r", "2", "-o", "json", "--vs-llama-cpp", env=env)
    rows = json.loads(out.stdout) if out.returncode == 0 else []
    ok = len(rows) == 2 and all(all(f in r for f in LLAMA_FIELDS) for r in rows)
    check(ok, "--vs-llama-cpp adds llama.cpp's fields", out.stderr[-400:])
    # CI's fresh .venv has no llama-cpp-python (it compiles llama.cpp for ~15 minutes): then the
    # fields are there but empty, and the hint is printed; with it, they hold the same-run figures.
    has_llama_cpp = subprocess.run([sys.executable, "-c", "import llama_cpp"], capture_output=True).returncode == 0
    if ok and has_llama_cpp:
        check(all(r["ratio"] > 0 and len(r["llama_cpp_samples_ns"]) == 2 for r in rows) and
              rows[0]["llama_cpp_version"].startswith("llama-cpp-python "), "ratio and llama.cpp's samples",
              json.dumps(rows[0])[:300])
    elif ok:
        check(all(r["ratio"] is None for r in rows) and "pip install llama-cpp-python" in out.stderr,
              "llama_cpp not importable here: empty llama.cpp fields and the install hint",
              json.dumps(rows[0])[:300] + out.stderr[-300:])
    # A Python without llama_cpp: the install hint, and the run goes on without the llama.cpp columns.
    bare = os.path.join(ROOT, "build", "no_llama_cpp_python")
    os.makedirs(bare, exist_ok=True)
    shim = os.path.join(bare, "python")
    with open(shim, "w") as f:
        f.write(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")  # -S: no site-packages, no llama_cpp
    os.chmod(shim, 0o755)
    out = bench(ferry, "-p", "8", "-n", "0", "-r", "1", "--vs-llama-cpp", env=dict(os.environ, FERRY_PYTHON=shim))
    check(out.returncode == 0 and "pip install llama-cpp-python" in out.stderr and "pp8" in out.stdout,
          "without llama_cpp: says how to install it and continues", f"{out.returncode} {out.stderr[-400:]!r}")


def test_synth_model(ferry):
    """scripts/synth_model.py: one SmolLM2-shaped layer at Q8_0 parses, has the parameters the script
    counts, and runs; a decode token reads every tensor except the embedding, whose row it gathers (the
    output head is the tied embedding, read whole)."""
    vocab = os.path.join(os.environ.get("FERRY_MODELS", os.path.join(ROOT, "models")),
                         "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.isfile(vocab):
        check(False, "synth_model: the default model (its vocabulary) is missing", vocab)
        return
    path = os.path.join(ROOT, "build", "synth-smollm2-1l-Q8_0.gguf")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts/synth_model.py"), "--shape", "smollm2-135m",
                          "--layers", "1", "--type", "Q8_0", "--out", path, "--vocab-gguf", vocab],
                         capture_output=True, text=True)
    check(out.returncode == 0, "synth_model.py writes a 1-layer SmolLM2 shape at Q8_0", out.stderr[-400:])
    if out.returncode != 0:
        return
    count = int(out.stdout.split("this file: 1 layers, ")[1].split(" ")[0].replace(",", ""))
    info = json.loads(subprocess.run([ferry, "inspect", "--json", path], capture_output=True, text=True).stdout)
    check(info["n_params"] == count and info["architecture"] == "llama" and info["file_type"]["name"] == "Q8_0" and
          info["tokenizer"]["n_tokens"] == 49152, "ferry inspect: llama, Q8_0, the script's parameter count",
          f"{info['n_params']} vs {count}")
    out = subprocess.run([ferry, "bench", "-m", path, "-t", "1", "--bandwidth-gbs", "10", "-p", "0", "-n", "2", "-r",
                          "1", "-o", "json"], capture_output=True, text=True)
    rows = json.loads(out.stdout) if out.returncode == 0 else []
    r = gguf.GGUFReader(path)
    embd = next(t for t in r.tensors if t.name == "token_embd.weight")
    expected = sum(int(t.n_bytes) for t in r.tensors) + int(embd.n_bytes) // int(embd.shape[1])
    check(len(rows) == 1 and rows[0]["weight_bytes_per_token"] == expected and math.isfinite(rows[0]["avg_ts"]),
          "ferry bench on it: weight bytes per token = all tensors + one embedding row",
          f"{rows and rows[0]['weight_bytes_per_token']} vs {expected} {out.stderr[-300:]}")
    os.remove(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    args = ap.parse_args()
    ferry = os.path.abspath(args.ferry)
    test_json_and_bytes(ferry)
    test_parallel(ferry)
    test_moe_bytes(ferry)
    test_csv_md_jsonl(ferry)
    test_usage_errors(ferry)
    test_ctrl_c(ferry)
    test_bandwidth(ferry)
    test_vs_llama_cpp(ferry)
    test_synth_model(ferry)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
