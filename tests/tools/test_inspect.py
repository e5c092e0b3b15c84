"""`ferry inspect --json` against the PyPI gguf package's reader, on every GGUF we can find:
the repo's test files, every .gguf in ../shared/golden (when present) and the default model (when
fetched). Also: a corrupt file must give exit code 1 and the reader's message.

usage: test_inspect.py --ferry build/bin/ferry
"""
import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile

import gguf


def expected(path):
    r = gguf.GGUFReader(path)
    kv = [k for k in r.fields if not k.startswith("GGUF.")]
    types = collections.Counter(t.tensor_type.name for t in r.tensors)
    return {
        "n_kv": len(kv),
        "keys": kv,
        "n_tensors": len(r.tensors),
        "types": dict(types),
        "n_params": int(sum(int(t.n_elements) for t in r.tensors)),
        "tensors": {t.name: (int(t.data_offset), int(t.n_bytes), [int(x) for x in t.shape]) for t in r.tensors},
    }


def check_file(ferry, path):
    out = subprocess.run([ferry, "inspect", "--json", path], capture_output=True, text=True)
    if out.returncode != 0:
        return [f"exit {out.returncode}: {out.stderr.strip()}"]
    got = json.loads(out.stdout)
    want = expected(path)
    errors = []
    if got["n_kv"] != want["n_kv"] or list(got["metadata"].keys()) != want["keys"]:
        errors.append(f"metadata keys differ: {got['n_kv']} vs {want['n_kv']}")
    if got["n_tensors"] != want["n_tensors"]:
        errors.append(f"tensor count {got['n_tensors']} vs {want['n_tensors']}")
    got_types = {k: v["count"] for k, v in got["types"].items()}
    if got_types != want["types"]:
        errors.append(f"types {got_types} vs {want['types']}")
    if got["n_params"] != want["n_params"]:
        errors.append(f"params {got['n_params']} vs {want['n_params']}")
    for t in got["tensors"]:
        offset, nbytes, shape = want["tensors"][t["name"]]
        if (t["offset"], t["bytes"], t["shape"]) != (offset, nbytes, shape):
            errors.append(f"tensor {t['name']}: {(t['offset'], t['bytes'], t['shape'])} vs {(offset, nbytes, shape)}")
            break
    return errors


def check_corrupt(ferry, source):
    errors = []
    with open(source, "rb") as f:
        data = f.read()
    with tempfile.TemporaryDirectory() as d:
        for name, blob in [("truncated", data[: len(data) // 2]), ("bad-magic", b"GGML" + data[4:])]:
            p = os.path.join(d, name + ".gguf")
            with open(p, "wb") as f:
                f.write(blob)
            out = subprocess.run([ferry, "inspect", p], capture_output=True, text=True)
            if out.returncode != 1 or "invalid GGUF file" not in out.stderr:
                errors.append(f"{name}: exit {out.returncode}, stderr {out.stderr.strip()!r}")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = sorted(glob.glob(os.path.join(root, "tests/data/**/*.gguf"), recursive=True))
    golden = os.path.join(root, "..", "shared", "golden")
    if os.path.isdir(golden):
        files += sorted(glob.glob(os.path.join(golden, "**", "*.gguf"), recursive=True))
    else:
        print(f"note: {golden} not found; checking the repo's own files only")
    default = os.path.join(os.environ.get("FERRY_MODELS", os.path.join(root, "models")),
                           "SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.isfile(default):
        files.append(default)
    else:
        print(f"note: default model {default} not fetched (scripts/get_model.sh); skipped")

    passed = failed = 0
    for path in files:
        errors = check_file(args.ferry, path)
        status = "ok" if not errors else "FAIL " + "; ".join(errors)
        print(f"{os.path.relpath(path, root)}: {status}")
        passed += not errors
        failed += bool(errors)
    errors = check_corrupt(args.ferry, files[0])
    print(f"corrupt files: {'ok' if not errors else 'FAIL ' + '; '.join(errors)}")
    passed += not errors
    failed += bool(errors)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
