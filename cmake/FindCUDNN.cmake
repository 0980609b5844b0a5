# FindCUDNN: locates cuDNN and reads its version from cudnn_version.h.
# Searches CUDNN_ROOT (cache or environment), the CUDA toolkit, the system prefixes, and the pip
# layout site-packages/nvidia/cudnn/{include,lib} of the nvidia-cudnn-cu* wheels. That folder is
# found by asking python3 where the nvidia.cudnn package lives when CUDNN_ROOT is unset (quietly
# skipped when python3 or the package is absent); the wheel ships lib/libcudnn.so.9 and no
# unversioned libcudnn.so, hence the versioned names below. At run time the pip cuDNN's lib folder
# must be on LD_LIBRARY_PATH: libcudnn.so.9 loads its sub-libraries (libcudnn_cnn.so.9, ...) by name.
# Provides CUDNN_FOUND, CUDNN_VERSION, CUDNN_INCLUDE_DIR, CUDNN_LIBRARY and the target CUDNN::cudnn.
if(NOT CUDNN_ROOT AND NOT DEFINED ENV{CUDNN_ROOT} AND NOT DEFINED CACHE{_CT_CUDNN_PIP_ROOT})
  set(_ct_pip_root "")
  find_program(_CT_PYTHON3 python3)
  mark_as_advanced(_CT_PYTHON3)
  if(_CT_PYTHON3)
    execute_process(
      COMMAND "${_CT_PYTHON3}" -c "import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))"
      OUTPUT_VARIABLE _ct_pip_root OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _ct_pip_result ERROR_QUIET TIMEOUT 30)
    if(NOT _ct_pip_result EQUAL 0 OR NOT IS_DIRECTORY "${_ct_pip_root}/include")
      set(_ct_pip_root "")
    endif()
  endif()
  set(_CT_CUDNN_PIP_ROOT "${_ct_pip_root}" CACHE INTERNAL "cuDNN of the nvidia-cudnn pip wheel, if any")
endif()
set(_ct_cudnn_hints ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${_CT_CUDNN_PIP_ROOT} ${CUDAToolkit_LIBRARY_ROOT}
    ${CUDAToolkit_TARGET_DIR} /usr/local/cuda /usr)
find_path(CUDNN_INCLUDE_DIR cudnn_version.h HINTS ${_ct_cudnn_hints} PATH_SUFFIXES include)
# Library and headers from the same root: with the include folder known, look beside it first.
get_filename_component(_ct_cudnn_inc_root "${CUDNN_INCLUDE_DIR}" DIRECTORY)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 libcudnn.so.8 NAMES_PER_DIR
  HINTS ${_ct_cudnn_inc_root} ${_ct_cudnn_hints} PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)

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
