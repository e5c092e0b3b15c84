"""Memory of `ferry run` end to end (peak RSS of the process, from the kernel's rusage):

1. With --no-mmap, the default model (weights read into memory) peaks at no more than the file size
   + the KV cache + 64 MiB.
2. No growth over 10,000 decoded tokens: a tiny golden model decodes 2,000 and then 10,000 tokens
   into the same preallocated context; the two peaks must agree within 1 MiB (a leak per token or per
   op would show up as megabytes).

usage: test_memory.py --ferry build/bin/ferry
"""
import argparse
import os
import subprocess
import sys

import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20


def peak_rss(args):
    """Runs args; returns (exit status, peak RSS in bytes, stderr)."""
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss * 1024, err


def kv_bytes(path, n_ctx):
    """F16 K and V cells for n_ctx positions, from the GGUF's hyperparameters (llama architecture)."""
    r = gguf.GGUFReader(path)

    def val(key):
        f = r.fields[key]
        return int(f.parts[f.data[0]][0])

    n_layer, n_embd = val("llama.block_count"), val("llama.embedding_length")
    n_head, n_head_kv = val("llama.attention.head_count"), val("llama.attention.head_count_kv")
    return n_layer * n_ctx * n_head_kv * (n_embd // n_head) * 2 * 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    args = ap.parse_args()
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(f"{'ok' if ok else 'FAIL'}: {what}")
        passed += ok
        failed += not ok

    model = os.path.join(os.environ.get("FERRY_MODELS", os.path.join(ROOT, "models")),
                         "SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.isfile(model):
        n_ctx = 512
        rc, rss, err = peak_rss([args.ferry, "run", "-m", model, "--no-mmap", "-p", "Hello", "-n", "16", "--temp", "0",
                                 "-c", str(n_ctx), "-t", "2"])
        size, kv = os.path.getsize(model), kv_bytes(model, n_ctx)
        limit = size + kv + 64 * MIB
        check(rc == 0 and rss <= limit,
              f"--no-mmap peak RSS {rss / MIB:.1f} MiB <= file {size / MIB:.1f} + KV {kv / MIB:.1f} + 64 MiB "
              f"(exit {rc}{'' if rc == 0 else ': ' + err[-300:]})")
    else:
        check(False, f"default model {model} missing (scripts/get_model.sh)")

    tiny = os.path.join(ROOT, "tests/data/models/llama-Q8_0.gguf")
    peaks = {}
    for n in (2000, 10000):
        rc, rss, err = peak_rss([args.ferry, "run", "-m", tiny, "-p", "Hello", "-n", str(n), "--temp", "0",
                                 "--ignore-eos", "-c", "10240", "-t", "1"])
        check(rc == 0, f"{n} tokens decoded, peak RSS {rss / MIB:.1f} MiB (exit {rc}{'' if rc == 0 else ': ' + err[-300:]})")
        peaks[n] = rss
    growth = peaks[10000] - peaks[2000]
    check(growth <= MIB, f"peak RSS grows by {growth / MIB:.2f} MiB from 2,000 to 10,000 tokens (limit 1 MiB)")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
