// libFuzzer entry point of the checkpoint / IDX bytes target (body: fuzz/files.cpp). Run:
// scripts/fuzz files 600.
#include "fuzz/entry.h"

CT_FUZZ_ENTRY(ct_fuzz_files)
