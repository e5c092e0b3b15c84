"""`ferry perplexity` end to end on the golden tiny models (tests/data/models, tests/data/perplexity):

* PPL: `Final estimate` with llama-perplexity's settings of the golden logs (-c 128, 8 chunks, the head
  of wikitext-2's wiki.test.raw) within 0.1% of llama.cpp's (F16) / 0.3% (quantized files);
* KLD: `--kl-divergence` on the .kld file llama.cpp wrote for the model: mean KLD and same-top within
  the manifest's recommended limits (tests/data/models/<model>.txt);
* round trips: base files written by ferry (llama.cpp layout, byte-compatible with the shipped one to
  its 16-bit precision; compact layout) read back against the same model give KLD 0; the compact
  file's KLD of a quantized model agrees with the full file's; --compare-model prints exactly what a
  base file of the same base model gives;
* bad input exits 1 with a message: short text, base file of another vocabulary, truncated or
  corrupt file, compact top-k out of range;
* parallel chunks (llama-perplexity's n_seq = -b / -c): -b 512 at -c 128 evaluates 4 chunks side by
  side and prints the same per-chunk values, Final estimate and KLD statistics as -b 128 (one chunk at
  a time), up to float rounding, on a transformer and on the hybrids (whose recurrent state is per
  sequence);
* peak RSS does not grow with the number of chunks.

usage: test_perplexity.py --ferry build/bin/ferry
"""
import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests/data/perplexity")
MODELS_DIR = os.path.join(ROOT, "tests/data/models")
TEXT = os.path.join(DATA, "wiki.test.head.raw")

# One line per golden model: (name, quantized). Its gguf and .txt live in tests/data/models, its
# llama-perplexity .log and .kld in tests/data/perplexity.
MODELS = [
    ("llama-F16", False),
    ("llama-Q8_0", True),
    ("llama-Q4_K_M", True),
    ("qwen3-F16", False),
    ("gemma3-F16", False),
    ("qwen3moe-F16", False),
    ("qwen35-F16", False),
    ("qwen35-Q4_K_M", True),
    ("qwen35moe-F16", False),
    ("qwen35moe-Q8_0", True),
    ("qwen35moe-Q4_K_M", True),
    ("qwen35moe-MXFP4_MOE", True),
]

# Per-file PPL tolerances wider than the default: none since the CPU backend follows ggml's float order
# (qwen35-Q4_K_M, which needed 0.5% before, now measures 5.1e-4 from llama-perplexity's).
PPL_TOLERANCE_OVERRIDES = {}

failures = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
    print(f"{'ok  ' if ok else 'FAIL'} {what}")


def ferry(args, *more):
    return subprocess.run([args.ferry, "perplexity", "-t", "1", *more], capture_output=True, text=True)


def gguf(name):
    return os.path.join(MODELS_DIR, name + ".gguf")


def limits(name):
    fields = dict(line.split(" ", 1) for line in open(os.path.join(MODELS_DIR, name + ".txt")).read().splitlines())
    return float(fields["max_mean_kld"]), float(fields["min_top1_agree"])


def final_ppl(text):
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", text)
    return float(m.group(1)) if m else None


def stat(text, label):
    m = re.search(re.escape(label) + r"\s*:\s*(-?[0-9.]+)", text)
    return float(m.group(1)) if m else None


def ppl_run(args, name, *more):
    return ferry(args, "-m", gguf(name), "-f", TEXT, "-c", "128", "--chunks", "8", *more)


def kld_run(args, name, base, *more):
    return ferry(args, "-m", gguf(name), "--kl-divergence", "--kl-divergence-base", base, *more)


def check_model(args, name, quantized):
    want = final_ppl(open(os.path.join(DATA, name + ".log")).read())
    out = ppl_run(args, name)
    got = final_ppl(out.stdout)
    tol = PPL_TOLERANCE_OVERRIDES.get(name, 0.003 if quantized else 0.001)
    rel = abs(got - want) / want if got else float("inf")
    check(out.returncode == 0 and rel <= tol,
          f"{name}: PPL {got} vs llama.cpp {want} (rel {rel:.2e} <= {tol}) {out.stderr[-300:] if got is None else ''}")

    max_kld, min_top = limits(name)
    out = kld_run(args, name, os.path.join(DATA, name + ".kld"))
    kld, top = stat(out.stdout, "Mean    KLD"), stat(out.stdout, "Same top p")
    check(out.returncode == 0 and kld is not None and kld <= max_kld and top >= 100 * min_top,
          f"{name}: KLD vs llama.cpp's base file: mean {kld} <= {max_kld}, same top {top}% >= {100 * min_top}%")


def decode_llama_file(path):
    raw = open(path, "rb").read()
    n_ctx, n_vocab, n_chunk = struct.unpack_from("<Iii", raw, 8)
    tokens = np.frombuffer(raw, dtype=np.int32, count=n_ctx * n_chunk, offset=20)
    nv = 2 * ((n_vocab + 1) // 2) + 4
    rows = np.frombuffer(raw, dtype=np.uint16, offset=20 + 4 * n_ctx * n_chunk).reshape(-1, nv)
    scale_min = rows[:, :4].copy().view(np.float32)
    logp = scale_min[:, :1] * rows[:, 4:4 + n_vocab].astype(np.float32) + scale_min[:, 1:2]
    return (n_ctx, n_vocab, n_chunk), tokens, logp


def check_round_trips(args, tmp):
    name = "llama-F16"
    full, compact = os.path.join(tmp, "full.kld"), os.path.join(tmp, "compact.kld")
    out = ppl_run(args, name, "--kl-divergence-base", full)
    check(out.returncode == 0, f"write llama.cpp layout {out.stderr[-200:] if out.returncode else ''}")
    out = ppl_run(args, name, "--kl-divergence-base", compact, "--kld-format", "compact")
    check(out.returncode == 0, f"write compact layout {out.stderr[-200:] if out.returncode else ''}")

    # Byte layout: same header and tokens as llama.cpp's file, rows equal within the 16-bit encoding.
    head, tokens, logp = decode_llama_file(full)
    ref_head, ref_tokens, ref_logp = decode_llama_file(os.path.join(DATA, name + ".kld"))
    check(head == ref_head and np.array_equal(tokens, ref_tokens) and logp.shape == ref_logp.shape,
          f"ferry's base file: header {head} and tokens as llama.cpp's {ref_head}")
    p = np.exp(ref_logp.astype(np.float64))
    keep = ref_logp > -16
    kld_rows = np.where(keep, p * (ref_logp - logp), 0).sum(axis=1)
    check(abs(kld_rows.mean()) <= 1e-4 and kld_rows.max() <= 1e-3,
          f"ferry's rows vs llama.cpp's: mean KLD {kld_rows.mean():.2e}, max {kld_rows.max():.2e}")

    for path, tol in ((full, 2e-6), (compact, 1e-6)):
        out = kld_run(args, name, path)
        kld, top = stat(out.stdout, "Mean    KLD"), stat(out.stdout, "Same top p")
        check(out.returncode == 0 and kld is not None and abs(kld) <= tol and top == 100.0,
              f"round trip {os.path.basename(path)}: model vs itself mean KLD {kld} (|.| <= {tol}), same top {top}%")

    # A quantized model against both files of the same base run: the compact KLD matches the full one.
    sizes = (os.path.getsize(full), os.path.getsize(compact))
    klds = []
    for path in (full, compact):
        out = kld_run(args, "llama-Q4_K_M", path)
        klds.append(stat(out.stdout, "Mean    KLD"))
        if path == compact:
            bound = re.search(r"at most ([0-9.]+) \(mean\)", out.stdout)
            print(f"     compact tail bound (mean): {bound.group(1) if bound else None}")
    ok = None not in klds and abs(klds[0] - klds[1]) <= 1e-3
    check(ok, f"compact ({sizes[1]} bytes, top 64 of 512) vs llama.cpp layout ({sizes[0]} bytes): "
              f"mean KLD {klds[1]} vs {klds[0]}")

    # --compare-model: exactly the lines a base file of the same base model gives.
    live = ferry(args, "-m", gguf("llama-Q4_K_M"), "--compare-model", gguf(name), "-f", TEXT, "-c", "128",
                 "--chunks", "8")
    filed = kld_run(args, "llama-Q4_K_M", full)
    check(live.returncode == 0 and live.stdout == filed.stdout and "both models in memory" in live.stderr,
          f"--compare-model prints what the base file gives{'' if live.returncode == 0 else live.stderr[-300:]}")


def expect_error(args, what, cmd, fragment):
    out = ferry(args, *cmd)
    check(out.returncode == 1 and fragment in out.stderr,
          f"{what}: exit {out.returncode}, message {out.stderr.strip().splitlines()[-1:]}")


def check_bad_input(args, tmp):
    short = os.path.join(tmp, "short.txt")
    open(short, "w").write(open(TEXT).read()[:300])
    expect_error(args, "text shorter than 2 chunks", ["-m", gguf("llama-F16"), "-f", short, "-c", "128"],
                 "you need at least 256 tokens")

    base = open(os.path.join(DATA, "llama-F16.kld"), "rb").read()
    n_ctx, n_vocab, n_chunk = struct.unpack_from("<Iii", base, 8)
    # A well-formed file for a 600-token vocabulary (rows of zeros are valid).
    other = os.path.join(tmp, "other_vocab.kld")
    rows = n_chunk * (n_ctx - 1 - n_ctx // 2) * (600 + 4) * 2
    open(other, "wb").write(base[:8] + struct.pack("<Iii", n_ctx, 600, n_chunk) +
                            base[20:20 + 4 * n_ctx * n_chunk] + bytes(rows))
    expect_error(args, "base file of another vocabulary",
                 ["-m", gguf("llama-F16"), "--kl-divergence", "--kl-divergence-base", other], "inconsistent vocabulary")

    cut = os.path.join(tmp, "cut.kld")
    open(cut, "wb").write(base[:-1000])
    expect_error(args, "truncated base file", ["-m", gguf("llama-F16"), "--kl-divergence", "--kl-divergence-base", cut],
                 "truncated")
    bad = os.path.join(tmp, "bad.kld")
    open(bad, "wb").write(b"_LOGITS_" + base[8:])
    expect_error(args, "corrupt magic", ["-m", gguf("llama-F16"), "--kl-divergence", "--kl-divergence-base", bad],
                 "not a KL-divergence base file")
    missing = os.path.join(tmp, "missing.kld")
    expect_error(args, "missing base file",
                 ["-m", gguf("llama-F16"), "--kl-divergence", "--kl-divergence-base", missing], "cannot open")
    for k in ("0", "513"):
        expect_error(args, f"compact top-k {k}",
                     ["-m", gguf("llama-F16"), "-f", TEXT, "-c", "128", "--chunks", "2", "--kl-divergence-base",
                      os.path.join(tmp, "k.kld"), "--kld-format", "compact", "--kld-top-k", k], "out of range")


NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def same_up_to_rounding(a, b, rel=1e-5):
    """The two outputs have the same text, and every decimal number in them agrees within rel (or 1e-6
    absolute: KLD values near 0)."""
    if NUMBER.sub("#", a) != NUMBER.sub("#", b):
        return False
    return all(abs(float(x) - float(y)) <= max(rel * abs(float(y)), 1e-6)
               for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)))


def check_parallel_chunks(args):
    for name in ("llama-F16", "qwen35-F16", "qwen35moe-F16"):
        runs = {}
        for b in ("128", "512"):
            ppl = ppl_run(args, name, "-b", b)
            kld = kld_run(args, name, os.path.join(DATA, name + ".kld"), "-b", b)
            seq = re.search(r"n_seq=(\d+)", ppl.stderr)
            runs[b] = (ppl, kld, seq.group(1) if seq else None)
        (p1, k1, s1), (p4, k4, s4) = runs["128"], runs["512"]
        ok = all(r.returncode == 0 for r in (p1, k1, p4, k4)) and (s1, s4) == ("1", "4")
        check(ok and same_up_to_rounding(p4.stdout, p1.stdout) and final_ppl(p1.stdout) is not None,
              f"{name}: -b 512 (n_seq {s4}) prints the PPL lines of -b 128 (n_seq {s1}): {final_ppl(p4.stdout)} "
              f"vs {final_ppl(p1.stdout)}")
        check(ok and same_up_to_rounding(k4.stdout, k1.stdout) and stat(k1.stdout, "Mean    KLD") is not None,
              f"{name}: -b 512 prints the KLD statistics of -b 128: mean KLD {stat(k4.stdout, 'Mean    KLD')} vs "
              f"{stat(k1.stdout, 'Mean    KLD')}")


def peak_rss_kib(cmd):
    """Runs cmd; its exit code and peak resident set size in KiB."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss


def check_memory_flat(args, tmp):
    """Peak RSS does not grow with the number of chunks (streamed base files, nothing kept per chunk
    but 8 bytes per scored token): 80 chunks within 5% of 10, writing and reading a base file. -b 64
    fixes the chunks evaluated side by side at 4 (the default -b 2048 would make them 10 and 80)."""
    base = os.path.join(tmp, "many.kld")
    rss = {}
    for n in (10, 80):
        write = [args.ferry, "perplexity", "-t", "1", "-m", gguf("llama-F16"), "-f", TEXT, "-c", "16", "-b", "64",
                 "--chunks", str(n), "--kl-divergence-base", base]
        read = [args.ferry, "perplexity", "-t", "1", "-m", gguf("llama-F16"), "-b", "64", "--kl-divergence",
                "--kl-divergence-base", base]
        rc_w, rss_w = peak_rss_kib(write)
        rc_r, rss_r = peak_rss_kib(read)
        rss[n] = (rc_w, rss_w, rc_r, rss_r)
    ok = all(v[0] == 0 and v[2] == 0 for v in rss.values()) and \
        rss[80][1] <= 1.05 * rss[10][1] and rss[80][3] <= 1.05 * rss[10][3]
    check(ok, f"peak RSS write/read: 10 chunks {rss[10][1]}/{rss[10][3]} KiB, 80 chunks {rss[80][1]}/{rss[80][3]} KiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    args = ap.parse_args()
    for name, quantized in MODELS:
        check_model(args, name, quantized)
    check_parallel_chunks(args)
    with tempfile.TemporaryDirectory() as tmp:
        check_round_trips(args, tmp)
        check_bad_input(args, tmp)
        check_memory_flat(args, tmp)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
