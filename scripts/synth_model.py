"""Random-weight GGUF files with the exact per-layer shapes of real models, for measuring speed at full
layer width without the real download (`ferry bench -m synth.gguf`).

Shapes (the text model; no vision tower, no MTP block):
  smollm2-135m     llama      30 layers, 576 wide, 9/3 heads of 64, FFN 1536, vocab 49152, tied output
  qwen3-30b-a3b    qwen3moe   48 layers, 2048 wide, 32/4 heads of 128, 128 experts (8 used) of 768, vocab 151936
  qwen3.5-35b-a3b  qwen35moe  40 layers, 2048 wide; every 4th layer gated attention (16/2 heads of 256), the
                              others Gated DeltaNet (16 K / 32 V heads of 128); 256 experts (8 used) of 512 and a
                              shared expert of 512; vocab 248320
  qwen3.5-27b      qwen35     64 layers, 5120 wide; attention 24/4 heads of 256, DeltaNet 16 K / 48 V heads of 128;
                              dense FFN 17408; vocab 248320
--layers N keeps the first N layers (default: all); layer i of the qwen3.5 shapes is attention iff (i+1) % 4 == 0.

Types: F16, Q8_0 and Q4_0 are written here (gguf-py's quantizer: every 2-D weight matrix and expert stack in
the type; norms, routers, the DeltaNet's conv/a/dt tensors F32, as llama.cpp's converter keeps them).
Q4_K_M and MXFP4_MOE are made from the F16 file by llama.cpp's own quantizer (llama_cpp.llama_model_quantize
from the llama-cpp-python package) when it is importable and knows the architecture; otherwise the script
says so and stops.

Values: matrices ~ N(0, 1/fan_in) (the output head 4.5x that, the token embedding N(0, 1), or sized like the
head when tied), norm weights ~ U(0.9, 1.1), DeltaNet a / dt as in trained models, so activations stay finite
at any depth. Tensors over 16M elements repeat one 16M-element random block (speed does not depend on the
values, and drawing billions of normals would take longer than the rest of the work).

Tokenizer: llama copies every tokenizer.* key of the default model (models/SmolLM2-135M-Instruct.Q4_1.gguf,
or --vocab-gguf); qwen shapes take the golden byte-level BPE vocabulary (../shared/golden/models/vocab.json, or
--vocab-json) padded with unused tokens to the real vocabulary size.

usage:
  .venv/bin/python scripts/synth_model.py --shape smollm2-135m --type Q8_0 --out synth-smollm2-Q8_0.gguf
  .venv/bin/python scripts/synth_model.py --shape qwen3-30b-a3b --layers 2 --type Q4_K_M --out q3moe-2l.gguf
  .venv/bin/python scripts/synth_model.py --shape qwen3.5-27b --count     # parameters of the full model
"""
import argparse
import json
import math
import os
import sys
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHAPES = {
    "smollm2-135m": dict(arch="llama", n_layer=30, n_embd=576, n_head=9, n_head_kv=3, head_dim=64, n_ff=1536,
                         n_vocab=49152, tied=True, rope_base=100000.0, eps=1e-5, ctx=8192, published="134.5M"),
    "qwen3-30b-a3b": dict(arch="qwen3moe", n_layer=48, n_embd=2048, n_head=32, n_head_kv=4, head_dim=128, n_ff=6144,
                          n_expert=128, n_expert_used=8, n_ff_exp=768, n_vocab=151936, tied=False, rope_base=1e6,
                          eps=1e-6, ctx=40960, published="30.5B total, 3.3B active"),
    "qwen3.5-35b-a3b": dict(arch="qwen35moe", n_layer=40, n_embd=2048, n_head=16, n_head_kv=2, head_dim=256,
                            n_expert=256, n_expert_used=8, n_ff_exp=512, n_ff_shexp=512, ssm_k_heads=16,
                            ssm_v_heads=32, ssm_head_dim=128, ssm_conv=4, full_attn_interval=4, rope_dim=64,
                            rope_sections=[11, 11, 10, 0], n_vocab=248320, tied=False, rope_base=1e7, eps=1e-6,
                            ctx=262144, published="35B total with the vision tower and MTP, 3B active"),
    "qwen3.5-27b": dict(arch="qwen35", n_layer=64, n_embd=5120, n_head=24, n_head_kv=4, head_dim=256, n_ff=17408,
                        ssm_k_heads=16, ssm_v_heads=48, ssm_head_dim=128, ssm_conv=4, full_attn_interval=4,
                        rope_dim=64, rope_sections=[11, 11, 10, 0], n_vocab=248320, tied=False, rope_base=1e7,
                        eps=1e-6, ctx=262144, published="27B with the vision tower and MTP"),
}

# Tensors kept in F32 whatever the type (llama.cpp's converter and quantizer leave them so).
F32_SUFFIXES = ("norm.weight", "ffn_gate_inp.weight", "ffn_gate_inp_shexp.weight", "ssm_conv1d.weight", "ssm_a",
                "ssm_dt.bias")
POOL = 1 << 24


def tensor_plan(H):
    """[(name, numpy shape = reversed ggml ne, kind)] in file order."""
    E, V, arch = H["n_embd"], H["n_vocab"], H["arch"]
    hd, nh, nkv = H["head_dim"], H["n_head"], H["n_head_kv"]
    plan = [("token_embd.weight", (V, E), "embd")]
    for i in range(H["n_layer"]):
        p = f"blk.{i}."
        if arch in ("llama", "qwen3moe"):
            plan += [(p + "attn_norm.weight", (E,), "norm"), (p + "attn_q.weight", (nh * hd, E), "w"),
                     (p + "attn_k.weight", (nkv * hd, E), "w"), (p + "attn_v.weight", (nkv * hd, E), "w"),
                     (p + "attn_output.weight", (E, nh * hd), "w")]
            if arch == "qwen3moe":
                plan += [(p + "attn_q_norm.weight", (hd,), "norm"), (p + "attn_k_norm.weight", (hd,), "norm")]
            plan += [(p + "ffn_norm.weight", (E,), "norm")]
        else:
            plan += [(p + "attn_norm.weight", (E,), "norm"), (p + "post_attention_norm.weight", (E,), "norm")]
            if (i + 1) % H["full_attn_interval"] != 0:  # Gated DeltaNet
                dk, nk, nv = H["ssm_head_dim"], H["ssm_k_heads"], H["ssm_v_heads"]
                conv_dim = 2 * dk * nk + dk * nv
                plan += [(p + "attn_qkv.weight", (conv_dim, E), "w"), (p + "attn_gate.weight", (dk * nv, E), "w"),
                         (p + "ssm_conv1d.weight", (conv_dim, H["ssm_conv"]), "conv"),
                         (p + "ssm_dt.bias", (nv,), "dt_bias"), (p + "ssm_a", (nv,), "ssm_a"),
                         (p + "ssm_beta.weight", (nv, E), "w"), (p + "ssm_alpha.weight", (nv, E), "w"),
                         (p + "ssm_norm.weight", (dk,), "norm"), (p + "ssm_out.weight", (E, dk * nv), "w")]
            else:  # gated attention: per head [q | gate]
                plan += [(p + "attn_q.weight", (nh * hd * 2, E), "w"), (p + "attn_k.weight", (nkv * hd, E), "w"),
                         (p + "attn_v.weight", (nkv * hd, E), "w"), (p + "attn_output.weight", (E, nh * hd), "w"),
                         (p + "attn_q_norm.weight", (hd,), "norm"), (p + "attn_k_norm.weight", (hd,), "norm")]
        if "n_expert" in H:
            ne, fe = H["n_expert"], H["n_ff_exp"]
            plan += [(p + "ffn_gate_inp.weight", (ne, E), "w"), (p + "ffn_gate_exps.weight", (ne, fe, E), "w"),
                     (p + "ffn_up_exps.weight", (ne, fe, E), "w"), (p + "ffn_down_exps.weight", (ne, E, fe), "w")]
            if "n_ff_shexp" in H:
                fs = H["n_ff_shexp"]
                plan += [(p + "ffn_gate_inp_shexp.weight", (E,), "w"), (p + "ffn_gate_shexp.weight", (fs, E), "w"),
                         (p + "ffn_up_shexp.weight", (fs, E), "w"), (p + "ffn_down_shexp.weight", (E, fs), "w")]
        else:
            ff = H["n_ff"]
            plan += [(p + "ffn_gate.weight", (ff, E), "w"), (p + "ffn_up.weight", (ff, E), "w"),
                     (p + "ffn_down.weight", (E, ff), "w")]
    plan.append(("output_norm.weight", (E,), "norm"))
    if not H["tied"]:
        plan.append(("output.weight", (V, E), "out"))
    return plan


def count_params(H):
    total = routed = 0
    for name, shape, _ in tensor_plan(H):
        n = math.prod(shape)
        total += n
        if "_exps." in name:
            routed += n
    active = total - routed + (routed // H["n_expert"] * H["n_expert_used"] if routed else 0)
    return total, active


def make_tensor(H, name, shape, kind, seed):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    n = math.prod(shape)
    if kind == "norm":
        return (1.0 + 0.1 * rng.uniform(-1, 1, size=shape)).astype(np.float32)
    if kind == "ssm_a":  # -exp(A_log), A ~ U(1, 16)
        return (-rng.uniform(1.0, 16.0, size=shape)).astype(np.float32)
    if kind == "dt_bias":  # inverse softplus of dt ~ logU(1e-3, 1e-1)
        dt = np.exp(rng.uniform(math.log(1e-3), math.log(1e-1), size=shape))
        return (dt + np.log(-np.expm1(-dt))).astype(np.float32)
    std = {"w": 1.0 / math.sqrt(shape[-1]), "out": 4.5 / math.sqrt(shape[-1]), "conv": 0.5,
           "embd": 4.5 / math.sqrt(shape[-1]) if H["tied"] else 1.0}[kind]
    block = rng.standard_normal(min(n, POOL), dtype=np.float32) * np.float32(std)
    return np.resize(block, n).reshape(shape)


def ggml_type(name, type_name):
    import gguf
    if name.endswith(F32_SUFFIXES):
        return gguf.GGMLQuantizationType.F32
    return {"F16": gguf.GGMLQuantizationType.F16, "Q8_0": gguf.GGMLQuantizationType.Q8_0,
            "Q4_0": gguf.GGMLQuantizationType.Q4_0}[type_name]


def encode(a, qtype):
    import gguf
    if qtype == gguf.GGMLQuantizationType.F32:
        return a.astype(np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return a.astype(np.float16)
    return gguf.quants.quantize(a, qtype)


def add_tokenizer(w, H, args):
    import gguf
    if H["arch"] == "llama":
        r = gguf.GGUFReader(args.vocab_gguf)
        n = len(r.fields["tokenizer.ggml.tokens"].data)
        if n != H["n_vocab"]:
            raise SystemExit(f"{args.vocab_gguf} has {n} tokens, the shape needs {H['n_vocab']}")
        for f in r.fields.values():
            if f.name.startswith("tokenizer."):
                vt = f.types[0]
                if vt == gguf.GGUFValueType.ARRAY:
                    w.add_key_value(f.name, f.contents(), vt, sub_type=f.types[-1])
                else:
                    w.add_key_value(f.name, f.contents(), vt)
        return
    with open(args.vocab_json, encoding="utf-8") as f:
        v = json.load(f)
    pad = H["n_vocab"] - len(v["tokens"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(v["tokens"] + [f"<|synth_unused_{i}|>" for i in range(pad)])
    w.add_token_types(v["token_type"] + [5] * pad)  # 5 = UNUSED
    w.add_token_merges(v["merges"])
    w.add_bos_token_id(v["bos_token_id"])
    w.add_eos_token_id(v["eos_token_id"])
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)


def add_hparams(w, H, shape_name, type_name):
    import gguf
    arch = H["arch"]
    w.add_name(f"ferry-synth-{shape_name}-{H['n_layer']}l")
    ftype = {"F16": gguf.LlamaFileType.MOSTLY_F16, "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
             "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[type_name]
    w.add_file_type(ftype)
    w.add_block_count(H["n_layer"])
    w.add_context_length(H["ctx"])
    w.add_embedding_length(H["n_embd"])
    if "n_ff" in H:
        w.add_feed_forward_length(H["n_ff"])
    w.add_head_count(H["n_head"])
    w.add_head_count_kv(H["n_head_kv"])
    w.add_rope_freq_base(H["rope_base"])
    w.add_layer_norm_rms_eps(H["eps"])
    if arch == "llama":
        w.add_vocab_size(H["n_vocab"])
        w.add_rope_dimension_count(H["head_dim"])
    else:
        w.add_key_length(H["head_dim"])
        w.add_value_length(H["head_dim"])
    if "n_expert" in H:
        w.add_expert_count(H["n_expert"])
        w.add_expert_used_count(H["n_expert_used"])
        w.add_expert_feed_forward_length(H["n_ff_exp"])
    if "n_ff_shexp" in H:
        w.add_expert_shared_feed_forward_length(H["n_ff_shexp"])
    if arch in ("qwen35", "qwen35moe"):
        w.add_rope_dimension_count(H["rope_dim"])
        w.add_rope_dimension_sections(H["rope_sections"])
        w.add_ssm_conv_kernel(H["ssm_conv"])
        w.add_ssm_state_size(H["ssm_head_dim"])
        w.add_ssm_group_count(H["ssm_k_heads"])
        w.add_ssm_time_step_rank(H["ssm_v_heads"])
        w.add_ssm_inner_size(H["ssm_head_dim"] * H["ssm_v_heads"])
        w.add_full_attention_interval(H["full_attn_interval"])


def write_gguf(H, shape_name, type_name, path, args):
    """Streams tensor by tensor: only one tensor is in memory at a time."""
    import gguf
    w = gguf.GGUFWriter(path, H["arch"])
    add_hparams(w, H, shape_name, type_name)
    add_tokenizer(w, H, args)
    plan = tensor_plan(H)
    for name, shape, kind in plan:
        qtype = ggml_type(name, type_name)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        if shape[-1] % block:
            raise SystemExit(f"{name}: rows of {shape[-1]} are not whole {qtype.name} blocks")
        nbytes = math.prod(shape) // block * size
        if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            w.add_tensor_info(name, shape, np.float32 if qtype == gguf.GGMLQuantizationType.F32 else np.float16,
                              nbytes)
        else:
            w.add_tensor_info(name, (*shape[:-1], shape[-1] // block * size), np.uint8, nbytes, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for i, (name, shape, kind) in enumerate(plan):
        a = make_tensor(H, name, shape, kind, args.seed)
        w.write_tensor_data(encode(a, ggml_type(name, type_name)))
        if args.verbose:
            print(f"[{i + 1}/{len(plan)}] {name} {list(reversed(shape))}", flush=True)
    w.close()


def llama_cpp_quantize(src, dst, type_name, threads, verbose):
    try:
        import llama_cpp
    except ImportError:
        raise SystemExit(f"{type_name} needs llama.cpp's quantizer: pip install llama-cpp-python (not importable)")
    if not verbose:  # a line per tensor otherwise (and a warning per K-quant fallback)
        silence = llama_cpp.llama_log_callback(lambda level, text, user: None)
        llama_cpp.llama_log_set(silence, None)
    ftype = {"Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, "MXFP4_MOE": llama_cpp.LLAMA_FTYPE_MOSTLY_MXFP4_MOE}
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype[type_name]
    p.nthread = threads
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), p)
    if rc != 0:
        raise SystemExit(f"llama.cpp {llama_cpp.__version__} could not quantize {src} to {type_name} (returned {rc}; "
                         "does this llama.cpp know the architecture?)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--layers", type=int, default=0, help="layers to keep (default: all of the real model)")
    ap.add_argument("--type", default="F16", choices=["F16", "Q8_0", "Q4_0", "Q4_K_M", "MXFP4_MOE"])
    ap.add_argument("--out", help="output GGUF file")
    ap.add_argument("--count", action="store_true", help="only print the parameter counts")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="threads for llama.cpp's quantizer")
    ap.add_argument("--vocab-gguf", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--vocab-json", default=os.path.join(ROOT, "../shared/golden/models/vocab.json"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    H = dict(SHAPES[args.shape])
    if args.layers < 0 or args.layers > H["n_layer"]:
        raise SystemExit(f"--layers: 1 to {H['n_layer']} for {args.shape}")
    full_total, full_active = count_params(H)
    if args.layers:
        H["n_layer"] = args.layers
    total, active = count_params(H)
    print(f"{args.shape} ({H['arch']}): full model {full_total:,} parameters ({full_total / 1e9:.3f} B; "
          f"{full_active / 1e9:.3f} B active per token); published: {H['published']}")
    print(f"this file: {H['n_layer']} layers, {total:,} parameters")
    if args.count:
        return 0
    if not args.out:
        raise SystemExit("--out FILE.gguf is needed (or --count)")
    if args.type in ("Q4_K_M", "MXFP4_MOE"):
        if args.type == "MXFP4_MOE" and "n_expert" not in H:
            raise SystemExit("MXFP4_MOE is a type for mixture-of-experts models")
        f16 = args.out + ".f16.tmp"
        write_gguf(H, args.shape, "F16", f16, args)
        try:
            llama_cpp_quantize(f16, args.out, args.type, args.threads, args.verbose)
        finally:
            os.remove(f16)
    else:
        write_gguf(H, args.shape, args.type, args.out, args)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
