"""`ferry template` and `ferry tokenize` end to end: every golden chat-template case rendered
through the command line must equal the reference bytes (or fail where the reference fails, with
exit code 1 and, for raise_exception, the exact message), and `ferry tokenize --ids` must print
the golden ids for a few vocabularies, including vocab-only GGUFs.

usage: test_text_cli.py --ferry build/bin/ferry
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = os.path.join(ROOT, "tests/data/chat-templates")
TOKENIZER = os.path.join(ROOT, "tests/data/tokenizer/golden")


def check_templates(ferry):
    cases = {c["name"]: c for c in json.load(open(os.path.join(TEMPLATES, "cases.json")))["cases"]}
    index = json.load(open(os.path.join(TEMPLATES, "expected/index.json")))
    failures, n = [], 0
    with tempfile.TemporaryDirectory() as d:
        for stem, t in index["templates"].items():
            for name, want in t["cases"].items():
                case = cases[name]
                messages = os.path.join(d, "messages.json")
                with open(messages, "w", encoding="utf-8") as f:
                    json.dump(case["messages"], f, ensure_ascii=False)
                cmd = [ferry, "template", "--chat-template-file", os.path.join(TEMPLATES, "templates", stem + ".jinja"),
                       "--messages", messages, "--special-tokens", json.dumps(t["special_tokens_passed"]),
                       "--template-now", index["fixed_now"]]
                if case["tools"] is not None:
                    tools = os.path.join(d, "tools.json")
                    with open(tools, "w", encoding="utf-8") as f:
                        json.dump(case["tools"], f, ensure_ascii=False)
                    cmd += ["--tools", tools]
                if case["add_generation_prompt"]:
                    cmd.append("--add-generation-prompt")
                if case["kwargs"]:
                    cmd += ["--chat-template-kwargs", json.dumps(case["kwargs"])]
                out = subprocess.run(cmd, capture_output=True)
                n += 1
                if want["status"] == "ok":
                    expected = open(os.path.join(TEMPLATES, "expected", want["file"]), "rb").read()
                    if out.returncode != 0 or out.stdout != expected:
                        failures.append(f"{stem}/{name}: exit {out.returncode} {out.stderr.decode()[:200]}")
                else:
                    err = open(os.path.join(TEMPLATES, "expected", want["file"]), encoding="utf-8").read()
                    kind, message = err.split("\n", 1)
                    stderr = out.stderr.decode("utf-8", "replace")
                    if out.returncode != 1 or out.stdout:
                        failures.append(f"{stem}/{name}: expected an error, got exit {out.returncode}")
                    elif kind == "TemplateError" and message.strip() not in stderr:
                        failures.append(f"{stem}/{name}: message {stderr.strip()!r} lacks {message.strip()!r}")
    return n, failures


def read_tests(path):
    data = open(path, encoding="utf-8").read()
    sep = "\n__ggml_vocab_test__\n"
    if data.endswith(sep):
        data = data[: -len(sep)]
    return data.split(sep)


def check_tokenize(ferry):
    failures, n = [], 0
    for vocab in ["llama-spm", "gpt-2", "phi-3"]:
        gguf = os.path.join(TOKENIZER, f"ggml-vocab-{vocab}.gguf")
        texts = read_tests(gguf + ".inp")
        outs = open(gguf + ".out", encoding="utf-8").read().split("\n")
        for text, line in list(zip(texts, outs))[:12]:
            if not text:
                continue  # `-p ""` means "no text given"
            want = [int(x) for x in line.split()]
            out = subprocess.run([ferry, "tokenize", "-m", gguf, "-p", text, "--no-bos", "--ids"],
                                 capture_output=True, text=True)
            n += 1
            got = json.loads(out.stdout) if out.returncode == 0 else None
            if got != want:
                failures.append(f"{vocab} {text!r}: {got} vs {want}")
    return n, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    args = ap.parse_args()
    passed = failed = 0
    for check in (check_templates, check_tokenize):
        n, failures = check(args.ferry)
        for f in failures:
            print("FAIL", f)
        print(f"{check.__name__}: {n - len(failures)}/{n} ok")
        passed += n - len(failures)
        failed += len(failures)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
