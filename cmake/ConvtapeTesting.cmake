# ct_add_test(<path/to/name_test.cpp>): one Catch2 executable and one CTest test named after the
# file's place in tests/ (tests/core/tensor_test.cpp -> core_tensor_test). Files under tests/cuda
# get the "cuda" label; a test exiting with code 77 is reported as skipped.
function(ct_add_test src)
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR}/tests ${src})
  string(REGEX REPLACE "\\.cpp$" "" rel "${rel}")
  string(REPLACE "/" "_" name "${rel}")
  add_executable(${name} ${src})
  set(labels cpu)
  set(support ct_test_support)
  if(rel MATCHES "^cuda/")
    set(labels cuda)
    set(support ct_test_cuda_main)
  endif()
  target_link_libraries(${name} PRIVATE ${support})
  ct_set_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" SKIP_RETURN_CODE 77 TIMEOUT 600)
endfunction()
