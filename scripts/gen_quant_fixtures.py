#!/usr/bin/env python3
"""Generate the block-format fixtures in tests/data/quant/ from gguf-py (the `gguf` PyPI package).

The expected values come from an implementation independent of ours: gguf-py's numpy (de)quantizers.
Rerun after changing this script; the output is deterministic (fixed seed) and is checked in.

    python3 scripts/gen_quant_fixtures.py [--out tests/data/quant]

File format (all little-endian). Dequantization fixture `<type>.deq.bin`:

    offset 0   magic       4 bytes  b"FQD1"
    offset 4   type        u32      ggml type id (F16 = 1, Q4_K = 12, ...)
    offset 8   n_blocks    u32
    offset 12  block_size  u32      elements per block (1 for F16 / BF16)
    offset 16  type_size   u32      bytes per block
    offset 20  raw         n_blocks * type_size bytes: random block bytes, with the fp16 scale
                           fields replaced by finite values (mostly normal, magnitudes 2^-12..2^2;
                           the first blocks use 0 and an fp16 subnormal) and, for MXFP4, the E8M0
                           exponent drawn from {0, 1, 2} and 100..150
    then       expected    n_blocks * block_size float32: gguf.quants.dequantize(raw)

Quantization fixture `<type>.quant.bin` (only for types whose gguf-py quantizer reproduces ggml's
reference quantizer, which ours follow: F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4):

    offset 0   magic       4 bytes  b"FQQ1"
    offset 4   type, n_blocks, block_size, type_size   (u32 each, as above)
    offset 20  input       n_blocks * block_size float32 (Gaussian, per-block varying scale)
    then       expected    n_blocks * type_size bytes: gguf.quants.quantize(input)

F16 fixtures cover random bit patterns plus zeros, subnormals, infinities and NaNs (dequant), and
near-tie / overflow / subnormal-range floats (quant; no NaN: numpy and x86 F16C disagree on NaN
payloads). Q8_1 and Q8_K have no gguf-py implementation; the C++ tests check them against the
one-line formula y = d * q instead.
"""

import argparse
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

SEED = 20240611

# Byte offsets of the fp16 scale fields in each block (ggml-common.h layouts).
HALF_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
    T.IQ4_NL: [0],
    T.IQ4_XS: [0],
}

DEQUANT_TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K,
                 T.IQ4_NL, T.IQ4_XS, T.MXFP4]
QUANT_TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.MXFP4]


def header(magic: bytes, qtype: T, n_blocks: int) -> bytes:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    return magic + struct.pack("<4I", int(qtype), n_blocks, block_size, type_size)


def random_halves(rng: np.random.Generator, count: int) -> np.ndarray:
    mag = np.exp2(rng.uniform(-12, 2, count)).astype(np.float16)
    sign = np.where(rng.random(count) < 0.5, -1, 1).astype(np.float16)
    h = (mag * sign).astype(np.float16)
    h[0] = 0.0
    if count > 1:
        h[1] = np.float16(3 * 2.0**-24)  # a subnormal half
    return h


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    if qtype == T.MXFP4:
        e = rng.integers(100, 151, size=n_blocks).astype(np.uint8)
        e[:3] = [0, 1, 2]
        raw[:, 0] = e
    for off in HALF_FIELDS.get(qtype, []):
        raw[:, off:off + 2] = random_halves(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw


def write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def gen_dequant(rng: np.random.Generator, out: str) -> None:
    for qtype in DEQUANT_TYPES:
        block_size, _ = GGML_QUANT_SIZES[qtype]
        n_blocks = 64 if block_size == 32 else 24
        raw = random_blocks(rng, qtype, n_blocks)
        with np.errstate(over="ignore"):
            expected = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        assert expected.size == n_blocks * block_size
        write(os.path.join(out, f"{qtype.name.lower()}.deq.bin"),
              header(b"FQD1", qtype, n_blocks) + raw.tobytes() + expected.tobytes())


def special_halves(rng: np.random.Generator) -> np.ndarray:
    specials = np.array([0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01,
                         0xfe00, 0x3c00, 0xbc00, 0x8001], dtype=np.uint16)
    return np.concatenate([specials, rng.integers(0, 65536, size=2048 - specials.size, dtype=np.uint16)])


def tricky_floats(rng: np.random.Generator, count: int, mantissa_drop: int) -> np.ndarray:
    """Floats with values near the rounding boundaries of a format that keeps 23 - mantissa_drop bits."""
    base = rng.standard_normal(count).astype(np.float32) * np.exp2(rng.uniform(-30, 20, count)).astype(np.float32)
    bits = base.view(np.uint32).copy()
    half = np.uint32(1 << (mantissa_drop - 1))
    # A third exact ties, a third one ulp either side of a tie, the rest untouched.
    k = count // 3
    bits[:k] = (bits[:k] & ~np.uint32((1 << mantissa_drop) - 1)) | half
    bits[k:2 * k] = (bits[k:2 * k] & ~np.uint32((1 << mantissa_drop) - 1)) | half
    bits[k:2 * k] += np.where(rng.random(k) < 0.5, np.uint32(1), np.uint32(0xFFFFFFFF)).astype(np.uint32)
    return bits.view(np.float32)


def gen_float_types(rng: np.random.Generator, out: str) -> None:
    # F16 dequant: numpy's half -> float conversion (exact, keeps NaN payloads).
    h = special_halves(rng)
    write(os.path.join(out, "f16.deq.bin"),
          header(b"FQD1", T.F16, h.size) + h.tobytes() + h.view(np.float16).astype(np.float32).tobytes())
    # BF16 dequant: gguf-py.
    b = special_halves(rng)
    write(os.path.join(out, "bf16.deq.bin"),
          header(b"FQD1", T.BF16, b.size) + b.tobytes() + dequantize(b.view(np.uint8), T.BF16).tobytes())

    # F16 quant: numpy float -> half rounds to nearest even; restrict to |x| < 2^16 plus a few
    # overflows, and add the subnormal range.
    x = tricky_floats(rng, 2048, 13)
    x = np.where(np.abs(x) < 65536, x, np.float32(1.0)).astype(np.float32)
    x[:8] = np.array([65504, 65519.99, 65520, -1e10, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25, -0.0], dtype=np.float32)
    x[8:264] = (rng.standard_normal(256) * 2.0**-16).astype(np.float32)
    with np.errstate(over="ignore"):
        hq = x.astype(np.float16)
    write(os.path.join(out, "f16.quant.bin"), header(b"FQQ1", T.F16, x.size) + x.tobytes() + hq.tobytes())

    # BF16 quant: gguf-py (ggml's rounding, NaN quieted).
    xb = tricky_floats(rng, 2048, 16)
    xb[:4] = np.array([np.inf, -np.inf, np.nan, -0.0], dtype=np.float32)
    xb[4] = np.uint32(0x7f800001).view(np.float32)  # signalling NaN -> quiet
    write(os.path.join(out, "bf16.quant.bin"),
          header(b"FQQ1", T.BF16, xb.size) + xb.tobytes() + quantize(xb, T.BF16).tobytes())


def gen_quant(rng: np.random.Generator, out: str) -> None:
    for qtype in QUANT_TYPES:
        block_size, _ = GGML_QUANT_SIZES[qtype]
        n_blocks = 64
        scale = np.exp2(rng.uniform(-8, 4, (n_blocks, 1))).astype(np.float32)
        x = (rng.standard_normal((n_blocks, block_size)).astype(np.float32) * scale).astype(np.float32)
        x[0] = 0.0  # an all-zero block
        x[1, :] = np.float32(0.25)  # a constant block
        x[1, 5] = np.float32(-0.5)
        x = x.reshape(-1)
        q = quantize(x, qtype)
        write(os.path.join(out, f"{qtype.name.lower()}.quant.bin"),
              header(b"FQQ1", qtype, n_blocks) + x.tobytes() + q.tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "quant"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    gen_dequant(rng, args.out)
    gen_float_types(rng, args.out)
    gen_quant(rng, args.out)


if __name__ == "__main__":
    main()
