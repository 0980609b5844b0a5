# ct_enable_sanitizers(target): AddressSanitizer + UndefinedBehaviorSanitizer when CT_SANITIZE=ON.
# Any UB report aborts the test (-fno-sanitize-recover), so CI cannot pass over one.
function(ct_enable_sanitizers target)
  if(CT_SANITIZE)
    set(flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_compile_options(${target} PUBLIC $<$<COMPILE_LANGUAGE:CXX>:${flags}>)
    target_link_options(${target} PUBLIC ${flags})
  endif()
endfunction()
