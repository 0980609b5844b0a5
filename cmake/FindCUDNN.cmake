# FindCUDNN: locates cuDNN and reads its version from cudnn_version.h.
# Searches CUDNN_ROOT (cache or environment), the CUDA toolkit, the system prefixes, and the pip
# layout site-packages/nvidia/cudnn/{include,lib} (point CUDNN_ROOT at that folder).
# Provides CUDNN_FOUND, CUDNN_VERSION, CUDNN_INCLUDE_DIR, CUDNN_LIBRARY and the target CUDNN::cudnn.
set(_ct_cudnn_hints ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR}
    /usr/local/cuda /usr)
find_path(CUDNN_INCLUDE_DIR cudnn_version.h HINTS ${_ct_cudnn_hints} PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_ct_cudnn_hints}
  PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)

if(CUDNN_INCLUDE_DIR AND EXISTS "${CUDNN_INCLUDE_DIR}/cudnn_version.h")
  file(STRINGS "${CUDNN_INCLUDE_DIR}/cudnn_version.h" _ct_cudnn_lines REGEX "#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
  foreach(_part MAJOR MINOR PATCHLEVEL)
    string(REGEX MATCH "#define CUDNN_${_part} +([0-9]+)" _m "${_ct_cudnn_lines}")
    set(CUDNN_${_part} "${CMAKE_MATCH_1}")
  endforeach()
  set(CUDNN_VERSION "${CUDNN_MAJOR}.${CUDNN_MINOR}.${CUDNN_PATCHLEVEL}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUDNN REQUIRED_VARS CUDNN_LIBRARY CUDNN_INCLUDE_DIR VERSION_VAR CUDNN_VERSION)

if(CUDNN_FOUND AND CUDNN_FIND_VERSION_MAJOR AND NOT CUDNN_MAJOR EQUAL CUDNN_FIND_VERSION_MAJOR)
  message(STATUS "convtape: cuDNN ${CUDNN_VERSION} found, but major version ${CUDNN_FIND_VERSION_MAJOR} is required")
  set(CUDNN_FOUND FALSE)
endif()

if(CUDNN_FOUND AND NOT TARGET CUDNN::cudnn)
  add_library(CUDNN::cudnn UNKNOWN IMPORTED)
  set_target_properties(CUDNN::cudnn PROPERTIES IMPORTED_LOCATION "${CUDNN_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR}")
endif()
mark_as_advanced(CUDNN_INCLUDE_DIR CUDNN_LIBRARY)
