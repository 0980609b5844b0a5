# CUDA detection. CT_CUDA=AUTO compiles cuda/ when nvcc, the CUDA toolkit and cuDNN 9 are all found;
# ON requires them; OFF never looks. Sets CT_WITH_CUDA and provides ct_configure_cuda_target().
# Architectures: sm_75 through sm_90 unless CMAKE_CUDA_ARCHITECTURES is given (never "native":
# the build machine has no GPU and the binaries run on another one).
set(CT_WITH_CUDA OFF)
if(NOT CT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    find_package(CUDAToolkit QUIET)
    find_package(CUDNN 9 QUIET)
    if(CUDAToolkit_FOUND AND CUDNN_FOUND)
      set(CT_WITH_CUDA ON)
    else()
      message(STATUS "convtape: nvcc found but CUDA toolkit (${CUDAToolkit_FOUND}) or cuDNN 9 (${CUDNN_FOUND}) missing")
    endif()
  endif()
  if(CT_CUDA STREQUAL "ON" AND NOT CT_WITH_CUDA)
    message(FATAL_ERROR "convtape: CT_CUDA=ON but nvcc, the CUDA toolkit or cuDNN 9 was not found")
  endif()
endif()

if(CT_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 75 80 86 89 90)
  endif()
  # One CUDA runtime, the shared one, which libcudnn and libcublas use too (CMake's default for
  # nvcc is the static one, which put both on the link line).
  if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 flag for nvcc; .cu files need only C++17
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
endif()

# ct_configure_cuda_target(convtape_cuda): the CUDA backend library's CUDA dependencies, public:
# whoever links convtape::cuda calls its internals, whose headers include the CUDA runtime's and
# cuDNN's.
# In the build tree the cuDNN headers are also visible to those tests (tests/cuda include
# cuda/handles.h), so that they compile against a pip-installed cuDNN whose headers are not beside
# the toolkit's.
function(ct_configure_cuda_target target)
  # cuBLAS is not linked but opened at first use (cuda/blas.cpp): loading it costs some 200 MiB of
  # resident memory, which CPU-only programs of a CUDA-enabled build should not pay.
  target_link_libraries(${target} PUBLIC CUDA::cudart CUDNN::cudnn PRIVATE ${CMAKE_DL_LIBS})
  target_compile_definitions(${target} PRIVATE CT_CUBLAS_LIBRARY="$<TARGET_FILE:CUDA::cublas>")
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CUDNN_INCLUDE_DIR}>)
endfunction()
