# ct_add_test(<source.cpp> [NAME <name>] [LINK <target>]): one executable and one CTest test.
# Without NAME, the name comes from the file's place in tests/ (tests/core/tensor_test.cpp ->
# core_tensor_test). Files under tests/cuda get the "cuda" label and the CUDA test main, which
# exits with 77 when no GPU is present; CTest reports that as a skip. In a build without the CUDA
# backend they cannot link (they call its internals), so each is registered as that skip alone.
# Files under tests/cuda_host (host-side code of the CUDA backend) link the backend library where
# it is built. Everything else is "cpu".
function(ct_add_test src)
  cmake_parse_arguments(arg "" "NAME;LINK" "" ${ARGN})
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR}/tests ${src})
  string(REGEX REPLACE "\\.cpp$" "" rel "${rel}")
  set(name ${arg_NAME})
  if(NOT name)
    string(REPLACE "/" "_" name "${rel}")
  endif()
  set(labels cpu)
  set(support ct_test_support)
  if(rel MATCHES "^cuda/")
    set(labels cuda)
    set(support ct_test_cuda_main)
    if(NOT TARGET convtape_cuda)
      add_test(NAME ${name} COMMAND ct_test_cuda_skip ${name})
      set_tests_properties(${name} PROPERTIES LABELS "${labels}" SKIP_RETURN_CODE 77)
      return()
    endif()
  endif()
  if(arg_LINK)
    set(support ${arg_LINK})
  endif()
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE ${support})
  if(TARGET convtape_cuda AND rel MATCHES "^cuda(_host)?/")
    target_link_libraries(${name} PRIVATE convtape::cuda)
  endif()
  ct_set_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" SKIP_RETURN_CODE 77 TIMEOUT 600)
endfunction()
