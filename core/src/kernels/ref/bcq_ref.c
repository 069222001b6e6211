/* placeholder: the kernel engineer replaces this file */
#include "../kernels.h"
const trl_kernel_ops *trl_bcq_ref(const trl_weight *w) { (void)w; return 0; }
