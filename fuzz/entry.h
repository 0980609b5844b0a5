// CT_FUZZ_ENTRY(body): libFuzzer's entry points around a target body. The cap on allocations is
// installed first; an exception that escapes the body (anything but convtape::Error, which the
// body swallows) is printed with its type and aborts, so libFuzzer saves the input as a crash.
#pragma once

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "fuzz/alloc_cap.h"
#include "fuzz/asan_options.h"
#include "fuzz/targets.h"

#define CT_FUZZ_ENTRY(body)                                                             \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {                                  \
    ct_fuzz::install_alloc_cap();                                                       \
    return 0;                                                                           \
  }                                                                                     \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {   \
    try {                                                                               \
      return body(data, size);                                                          \
    } catch (const std::exception& e) {                                                 \
      int status = 0;                                                                   \
      char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);    \
      std::fprintf(stderr, "ct_fuzz: " #body ": uncaught %s: %s\n",                     \
                   name ? name : typeid(e).name(), e.what());                           \
      std::abort();                                                                     \
    } catch (...) {                                                                     \
      std::fprintf(stderr, "ct_fuzz: " #body ": uncaught exception of unknown type\n"); \
      std::abort();                                                                     \
    }                                                                                   \
  }
