# Tokenizer tests: the core's encoders and blob reader, and the converter's
# importers. The importer source is compiled into the test itself (it is plain
# C over json.h, no file I/O beyond fopen), so the same test also runs in the
# wasm build, where the converter library is not built.
set(TRL_TOK512 "")
foreach(cand ${PROJECT_SOURCE_DIR}/models/stories260K/tok512.bin
             ${PROJECT_SOURCE_DIR}/../shared/models/stories260K/tok512.bin
             /work/shared/models/stories260K/tok512.bin)
  if(NOT TRL_TOK512 AND EXISTS ${cand})
    set(TRL_TOK512 ${cand})
  endif()
endforeach()
trl_add_test(test-tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/test-tokenizer.c LABELS tokenizer ARGS ${TRL_TOK512})
target_sources(test-tokenizer PRIVATE ${PROJECT_SOURCE_DIR}/converter/tokenizer_import.c)
target_include_directories(test-tokenizer PRIVATE ${PROJECT_SOURCE_DIR}/converter)
