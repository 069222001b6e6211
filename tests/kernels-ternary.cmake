# The ternary (t2) kernels: every implementation == the scalar reference, and the
# reference == the docs/FORMAT.md formulas (natively, under the sanitizers, and in
# the wasm build under Node).
trl_add_test(test-kernels-ternary ${CMAKE_CURRENT_LIST_DIR}/test-kernels-ternary.c LABELS kernels)
# ... and the relaxed-SIMD design, in the build that has it (wasm)
trl_add_relaxed_test(test-kernels-ternary-relaxed ${CMAKE_CURRENT_LIST_DIR}/test-kernels-ternary.c trillium_core_relaxed
                     LABELS kernels)
