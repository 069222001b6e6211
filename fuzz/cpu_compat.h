/* cpu_compat.h - force-included into the fuzz build (fuzz/CMakeLists.txt).
 * clang 14 refuses __builtin_cpu_supports("f16c"), which
 * core/src/kernels/dispatch.c asks for beside "avx2": ask for AVX2 alone (every
 * x86 CPU with AVX2 has F16C). A macro does not expand inside itself, so the
 * builtin below is the real one. */
#if defined(__clang__) && defined(__x86_64__)
#define __builtin_cpu_supports(feature) __builtin_cpu_supports("avx2")
#endif
