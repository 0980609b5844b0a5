# ONNX export (onnx/): libconvtape_onnx, target convtape_onnx (alias convtape::onnx, package
# component "onnx"). CT_ONNX=AUTO builds it when Protobuf and ONNX (Debian's libonnx-dev: the CMake
# package ONNX, targets onnx and onnx_proto) are found; ON requires them; OFF never looks. Both are
# private to the library: its installed header (onnx/export.h) includes neither, so libconvtape and
# the programs that link convtape::onnx never compile against them. Included after libconvtape is
# defined; sets CT_WITH_ONNX and defines ct_add_onnx_tests() for tests/CMakeLists.txt.
set(CT_ONNX AUTO CACHE STRING "ONNX export (onnx/): AUTO (when ONNX and Protobuf are found), ON or OFF")
set_property(CACHE CT_ONNX PROPERTY STRINGS AUTO ON OFF)

set(CT_WITH_ONNX OFF)
if(NOT CT_ONNX STREQUAL "OFF")
  # ONNX's package config names protobuf::libprotobuf without finding it: Protobuf first.
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND)
    find_package(ONNX QUIET CONFIG)
  endif()
  if(Protobuf_FOUND AND ONNX_FOUND AND TARGET onnx AND TARGET onnx_proto)
    set(CT_WITH_ONNX ON)
  else()
    message(STATUS "convtape: ONNX or Protobuf not found: onnx/ (ONNX export) is not built "
                   "(install Debian's libonnx-dev and libprotobuf-dev)")
  endif()
  if(CT_ONNX STREQUAL "ON" AND NOT CT_WITH_ONNX)
    message(FATAL_ERROR "convtape: CT_ONNX=ON but ONNX or Protobuf was not found (install libonnx-dev and libprotobuf-dev)")
  endif()
endif()

file(GLOB CT_ONNX_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/onnx/*.cpp)
if(CT_WITH_ONNX AND NOT CT_ONNX_SOURCES)
  message(STATUS "convtape: onnx/ has no sources: ONNX export is not built")
  set(CT_WITH_ONNX OFF)
endif()
if(CT_WITH_ONNX)
  add_library(convtape_onnx SHARED ${CT_ONNX_SOURCES})
  add_library(convtape::onnx ALIAS convtape_onnx)
  target_link_libraries(convtape_onnx PUBLIC convtape PRIVATE onnx onnx_proto protobuf::libprotobuf)
  target_compile_definitions(convtape_onnx PUBLIC CT_WITH_ONNX=1)
  target_compile_definitions(convtape_onnx PRIVATE CONVTAPE_ONNX_VERSION="${PROJECT_VERSION}")
  target_compile_options(convtape_onnx PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-fno-semantic-interposition>)
  target_link_options(convtape_onnx PRIVATE ${CT_NO_UNDEFINED})
  set_target_properties(convtape_onnx PROPERTIES EXPORT_NAME onnx)
  ct_set_warnings(convtape_onnx)
  ct_enable_sanitizers(convtape_onnx)
  install(TARGETS convtape_onnx EXPORT convtapeOnnxTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT convtapeOnnxTargets NAMESPACE convtape:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/convtape)
  install(FILES ${PROJECT_SOURCE_DIR}/onnx/export.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/convtape/onnx)
endif()

# The exporter's tests (tests/onnx/*_test.cpp; tests/CMakeLists.txt leaves them to this function):
# each links libconvtape_onnx and ONNX itself, since every test runs ONNX's checker and shape
# inference on the model it wrote. In a build without ONNX each is registered as a skip that says
# why.
function(ct_add_onnx_tests)
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/onnx/*_test.cpp)
  foreach(src ${srcs})
    get_filename_component(stem ${src} NAME_WE)
    set(name onnx_${stem})
    if(TARGET convtape_onnx)
      ct_add_test(${src})
      target_link_libraries(${name} PRIVATE convtape::onnx onnx onnx_proto protobuf::libprotobuf)
    else()
      add_test(NAME ${name} COMMAND sh -c "echo '${name}: skipped: this build has no ONNX (onnx/ is not built: install libonnx-dev and libprotobuf-dev)'; exit 77")
      set_tests_properties(${name} PROPERTIES LABELS cpu SKIP_RETURN_CODE 77)
    endif()
  endforeach()
endfunction()
