"""`ferry run` end to end on the default model: greedy completions (64 tokens, --temp 0) of five
fixed prompts must equal llama.cpp's (tests/data/run/expected.json, made by scripts/run_expected.py
with the llama-cpp-python version recorded there) up to llama.cpp's first near tie (a step whose
top-1 minus top-2 logit is below `near_tie_nats`: beyond it, legitimate differences in summation
order and activation rounding may pick the other token), on the CPU backend with 1 and 2 threads and
flash attention off, as llama-cpp-python's default computed the expected texts (ferry then follows
llama.cpp's mul_mat + softmax attention arithmetic).
The prompts in IDENTICAL must match llama.cpp's whole 64-token text (ferry quantizes activations with
ggml-cpu's x86 rounding, so these agree past their near ties); for the others, how far past the tie
the texts still agree is printed for information. Then a quantized KV cache (-ctk q8_0 -ctv q8_0
-fa on, expected_kv_q8_0.json from `run_expected.py --kv-q8_0`) against llama.cpp with the same cache,
up to its first near tie.

usage: test_run.py --ferry build/bin/ferry
"""
import argparse
import json
import os
import subprocess
import sys

# Prompts (indices into expected["cases"]) whose whole greedy text equals llama.cpp's: all five, since
# ferry's RoPE rounds as ggml's (GCC-contracted) rotation and a one-token -fa off micro-batch uses
# ggml_vec_dot_f16 as llama.cpp's mul_mat does there (docs/quality.md).
IDENTICAL = (0, 1, 2, 3, 4)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    args = ap.parse_args()
    model = os.path.join(os.environ.get("FERRY_MODELS", os.path.join(ROOT, "models")),
                         "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.isfile(model):
        print(f"FAIL: default model {model} missing (scripts/get_model.sh)")
        print("0 passed, 1 failed")
        return 1
    expected = json.load(open(os.path.join(ROOT, "tests/data/run/expected.json"), encoding="utf-8"))
    passed = failed = 0
    for threads in (1, 2):
        for index, case in enumerate(expected["cases"]):
            out = subprocess.run([args.ferry, "run", "-m", model, "-p", case["prompt"], "-n", "64", "--temp", "0",
                                  "-t", str(threads), "-c", "512", "-fa", "off"], capture_output=True)
            text = out.stdout.decode("utf-8", "replace")
            if text.endswith("\n"):
                text = text[:-1]  # ferry run ends the output with a newline
            want = case["text"] if index in IDENTICAL else case["text_until_tie"]
            ok = out.returncode == 0 and text.startswith(want)
            same = next((k for k in range(min(len(text), len(case["text"]))) if text[k] != case["text"][k]),
                        min(len(text), len(case["text"])))
            print(f"-t {threads} {case['prompt'][:30]!r}: {'ok' if ok else 'FAIL'}; agrees for {same} of "
                  f"{len(case['text'])} chars (near tie after {len(case['text_until_tie'])} chars, "
                  f"{case['first_near_tie']} tokens)")
            if not ok:
                i = same
                print(f"FAIL -t {threads} {case['prompt']!r}: exit {out.returncode}, differs at char {i}: "
                      f"{text[max(0, i - 20):i + 20]!r} vs {case['text'][max(0, i - 20):i + 20]!r} "
                      f"{out.stderr.decode()[-300:]}")
            passed += ok
            failed += not ok
    # Quantized KV cache with flash attention (-ctk q8_0 -ctv q8_0 -fa on), against llama.cpp with the same
    # cache, up to its first near tie.
    kv = json.load(open(os.path.join(ROOT, "tests/data/run/expected_kv_q8_0.json"), encoding="utf-8"))
    for case in kv["cases"]:
        out = subprocess.run([args.ferry, "run", "-m", model, "-p", case["prompt"], "-n", "64", "--temp", "0", "-t", "2",
                              "-c", "512", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on"], capture_output=True)
        text = out.stdout.decode("utf-8", "replace").removesuffix("\n")
        err = out.stderr.decode("utf-8", "replace")
        ok = out.returncode == 0 and text.startswith(case["text_until_tie"]) and "KV Q8_0/Q8_0" in err
        print(f"-ctk q8_0 -ctv q8_0 -fa on {case['prompt'][:30]!r}: {'ok' if ok else 'FAIL'} "
              f"(near tie after {case['first_near_tie']} tokens)")
        if not ok:
            print(f"FAIL: exit {out.returncode}: {text[:120]!r} vs {case['text_until_tie'][:120]!r} {err[-300:]}")
        passed += ok
        failed += not ok
    print(f"greedy vs llama.cpp {expected['llama_cpp_python']}: {passed} passed, {failed} failed")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
