# Sources of the tokenizer part of ferry_text (paths relative to src/text).
list(APPEND FERRY_TEXT_SOURCES)
