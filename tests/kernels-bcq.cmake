# Binary-coded (bcq) kernels: every implementation == the reference == FORMAT.md in double.
# `test-kernels-bcq --bench` also times k=2, g=128 bcq against q8_0 at 4096 x 4096.
trl_add_test(test-kernels-bcq test-kernels-bcq.c LABELS kernels)
