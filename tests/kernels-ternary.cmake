# The ternary (t2) kernels: every implementation == the scalar reference, and the
# reference == the docs/FORMAT.md formulas (natively, under the sanitizers, and in
# the wasm build under Node).
trl_add_test(test-kernels-ternary ${CMAKE_CURRENT_LIST_DIR}/test-kernels-ternary.c LABELS kernels)
