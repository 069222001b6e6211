# Converter tests (label "converter"): the library (readers, quantizers, SVD,
# writer, loader), and end-to-end runs of the CLIs. Native only: the converter is
# not built for wasm.
if(EMSCRIPTEN OR NOT TARGET trillium_convert_lib)
  return()
endif()

# The real stories260K: the lead copies it to models/; the shared copy is the fallback.
set(TRLC_STORIES ${PROJECT_SOURCE_DIR}/models/stories260K)
if(NOT EXISTS ${TRLC_STORIES}/stories260K.bin)
  set(TRLC_STORIES /work/shared/models/stories260K)
endif()

set(TRLC_TEST_LIBS trillium_convert_lib)
trl_add_test(test-converter-sha256 test-converter-sha256.c LABELS converter LIBS ${TRLC_TEST_LIBS})
trl_add_test(test-converter-safetensors test-converter-safetensors.c LABELS converter LIBS ${TRLC_TEST_LIBS})
trl_add_test(test-converter-hf test-converter-hf.c LABELS converter LIBS ${TRLC_TEST_LIBS})
trl_add_test(test-converter-llama2c test-converter-llama2c.c LABELS converter LIBS ${TRLC_TEST_LIBS}
  ARGS ${TRLC_STORIES}/stories260K.bin ${TRLC_STORIES}/tok512.bin)
trl_add_test(test-converter-pack test-converter-pack.c LABELS converter LIBS ${TRLC_TEST_LIBS})
trl_add_test(test-converter-quant test-converter-quant.c LABELS converter LIBS ${TRLC_TEST_LIBS})
trl_add_test(test-converter-v2 test-converter-v2.c LABELS converter LIBS ${TRLC_TEST_LIBS})
# bcq against tests/reference/bcq.py (numpy, run with the system Python), weighted bcq, --layers
trl_add_test(test-converter-calib test-converter-calib.c LABELS converter LIBS ${TRLC_TEST_LIBS}
  ARGS /usr/bin/python3)
# --family packs (format version 3): each variant equals its member converted alone
trl_add_test(test-converter-family test-converter-family.c LABELS converter LIBS ${TRLC_TEST_LIBS})

add_test(NAME test-converter-cli
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/converter/test_cli.py
          $<TARGET_FILE:trillium-convert> $<TARGET_FILE:trillium-eval> ${TRLC_STORIES}
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test-converter-cli PROPERTIES LABELS converter)

# trillium-convert's version-2 options end to end on models from the reference
# generator; needs numpy, so it runs with the system Python that has it.
find_program(TRLC_NUMPY_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(TRLC_NUMPY_PYTHON)
  add_test(NAME test-converter-cli-v2
    COMMAND ${TRLC_NUMPY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/converter/test_cli_v2.py
            $<TARGET_FILE:trillium-convert> $<TARGET_FILE:trillium-eval>
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(test-converter-cli-v2 PROPERTIES LABELS converter)
  # --calib (perplexities against the numpy reference), --layers, --embed/--head, --json
  add_test(NAME test-converter-cli-calib
    COMMAND ${TRLC_NUMPY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/converter/test_cli_calib.py
            $<TARGET_FILE:trillium-convert> $<TARGET_FILE:trillium-eval>
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(test-converter-cli-calib PROPERTIES LABELS converter)
endif()

# GGUF: the reader, and GGUF sources through the writer. Fixtures come from
# tests/reference/gguf_writer.py run with the system Python (numpy); without it
# those parts are skipped and the hand-made files still run.
trl_add_test(test-converter-gguf test-converter-gguf.c LABELS converter LIBS ${TRLC_TEST_LIBS}
  ARGS /usr/bin/python3)
if(TRLC_NUMPY_PYTHON)
  add_test(NAME test-converter-cli-gguf
    COMMAND ${TRLC_NUMPY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/converter/test_cli_gguf.py
            $<TARGET_FILE:trillium-convert> $<TARGET_FILE:trillium-eval> ${TRLC_STORIES}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(test-converter-cli-gguf PROPERTIES LABELS converter)
endif()
