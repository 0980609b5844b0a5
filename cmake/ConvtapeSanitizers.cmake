# ct_enable_sanitizers(target): sanitizers chosen by CT_SANITIZE.
#   ON (or address)  AddressSanitizer + UndefinedBehaviorSanitizer
#   thread           ThreadSanitizer (build with clang, whose libomp the Archer tool annotates for
#                    TSan; GCC's libgomp is not instrumented and reports its own barriers as races:
#                    see scripts/tsan)
# Any UB report aborts the test (-fno-sanitize-recover), so CI cannot pass over one.
function(ct_enable_sanitizers target)
  if(NOT CT_SANITIZE)
    return()
  endif()
  string(TOLOWER "${CT_SANITIZE}" kind)
  if(kind STREQUAL "thread")
    set(flags -fsanitize=thread -fno-omit-frame-pointer)
  elseif(kind MATCHES "^(on|1|true|yes|address)$")
    set(flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  else()
    message(FATAL_ERROR "CT_SANITIZE: expected OFF, ON, address or thread, got '${CT_SANITIZE}'")
  endif()
  target_compile_options(${target} PUBLIC $<$<COMPILE_LANGUAGE:CXX>:${flags}>)
  target_link_options(${target} PUBLIC ${flags})
endfunction()
