# Sources of the tokenizer part of ferry_text (paths relative to src/text).
list(APPEND FERRY_TEXT_SOURCES
  tokenizer/bpe.cpp
  tokenizer/pretokenize.cpp
  tokenizer/special.cpp
  tokenizer/spm.cpp
  tokenizer/unicode.cpp
  tokenizer/vocab.cpp
  tokenizer/wpm.cpp)
