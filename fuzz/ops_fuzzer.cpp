// libFuzzer entry point of the op-argument target (body: fuzz/ops.cpp). Run: scripts/fuzz ops 600.
#include "fuzz/entry.h"

CT_FUZZ_ENTRY(ct_fuzz_ops)
