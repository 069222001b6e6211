trl_add_test(test-core test-core.c LABELS core)
