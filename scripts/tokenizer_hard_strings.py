#!/usr/bin/env python3
"""Writes tests/data/tokenizer/hard_strings.inp: tricky inputs for tokenizer comparisons.

Same format as llama.cpp's .inp files: every string followed by "\\n__ggml_vocab_test__\\n".
"""
import pathlib

SEP = "\n__ggml_vocab_test__\n"

STRINGS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "Hello\n\nworld\n",
    "  leading and trailing  ",
    "\t\tdef f(x):\n\t\treturn x  # tab-indented\n",
    "    for (int i = 0; i < n; ++i) {\r\n        a[i] = b[i] * 2;\r\n    }",
    " " * 17 + "x" + "\n" * 5 + "y" + " \t \n " * 3,
    "1234567890123456789 3.14159 1,000,000 0x1F -42 ½ ² ٣ ໓",
    "Emoji: 🦙🔥👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥 🇫🇷🇩🇪",
    "Combining: e\u0301 re\u0301sume\u0301 a\u0300a\u0300a\u0300 Z\u0351\u0360\u0359a\u0362l\u0358g\u0364o",
    "a\u0300" * 40,
    "CJK: 我想在apple工作1314151天～ 日本語のテキスト、カタカナ。 한국어 텍스트",
    "Khmer: ព្រះរាជាណាចក្រកម្ពុជា ជាតិ សាសនា ព្រះមហាក្សត្រ",
    "Thai: ภาษาไทยเป็นภาษาที่มีวรรณยุกต์ Hindi: हिन्दी भाषा Arabic: اللغة العربية",
    "Cyrillic: Съешь же ещё этих мягких французских булок, да выпей чаю",
    "Greek: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Viết Nam Cửa Việt",
    "Contractions: I'm you're he's we've they'll she'd don't IT'S WE'VE 'tis y'all",
    "Quotes: “smart” ‘single’ «guillemets» „low“ — en–dash … ellipsis",
    "Symbols: $100 + 5% = <tag attr=\"v\"> a^b ~c |d| `code` @user #hash &amp; \\path\\to",
    "URL: https://example.com/path?q=1&r=two#frag mailto:a.b@c.de",
    "Zero width: a\u200bb\u200cc\u200dd\ufeffe \u00a0nbsp \u2009thin \u3000ideographic",
    "Private use: \ue000\uf8ff and rare: \U0001d54f\U0001d5ba \U00020000",
    "Control chars: \x01\x02\x7f\u0085\u2028\u2029 end",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>",
    "text<|endoftext|>more text<|endoftext|>",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<bos><eos><pad><unk> <mask> [multimodal]",
    "<|im_start|incomplete <|im_end| <start_of_turn",
    "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nHi [/INST]",
    "Repeated: " + "ab" * 50 + " " + "!!!" * 20 + " " + "=" * 64,
    "Mixed\u00e9\u0301accents \u00c5ngstr\u00f6m \u212bngstrom ﬁ ligature Ⅻ roman",
    "Long digits: " + "9876543210" * 8,
    "Whitespace mix: a \t b\n\tc \r\n d\u00a0\u00a0e\u2003f",
]


def main() -> None:
    out = pathlib.Path(__file__).resolve().parent.parent / "tests/data/tokenizer/hard_strings.inp"
    out.write_text("".join(s + SEP for s in STRINGS), encoding="utf-8", newline="")
    print(f"wrote {len(STRINGS)} strings to {out}")


if __name__ == "__main__":
    main()
