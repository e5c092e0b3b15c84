# Sources of the chat-template part of ferry_text (paths relative to src/text).
list(APPEND FERRY_TEXT_SOURCES
  jinja/builtins.cpp
  jinja/filters.cpp
  jinja/interpreter.cpp
  jinja/json.cpp
  jinja/lexer.cpp
  jinja/ops.cpp
  jinja/parser.cpp
  jinja/pystr.cpp
  jinja/template.cpp
  jinja/value.cpp)
