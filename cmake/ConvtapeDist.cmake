# Distributed training detection. CT_DIST=AUTO builds dist/ when MPI (its C API) is found; ON
# requires it; OFF never looks. With the CUDA backend, NCCL (nccl.h and libnccl, which ship with the
# CUDA toolkit on our machines) adds the NCCL engine. Sets CT_WITH_DIST and CT_WITH_NCCL, and the
# imported target CT::nccl.
set(CT_WITH_DIST OFF)
set(CT_WITH_NCCL OFF)
if(NOT CT_DIST STREQUAL "OFF")
  # The C API through the C++ compiler (the project enables no C), without the old C++ bindings.
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI QUIET COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(CT_WITH_DIST ON)
    find_program(CT_MPIEXEC NAMES mpirun mpiexec )
    if(NOT CT_MPIEXEC)
      set(CT_MPIEXEC ${MPIEXEC_EXECUTABLE})
    endif()
  else()
    message(STATUS "convtape: MPI not found: dist/ (data-parallel training) is not built "
                   "(scripts/install-deps installs Debian's Open MPI)")
  endif()
  if(CT_DIST STREQUAL "ON" AND NOT CT_WITH_DIST)
    message(FATAL_ERROR "convtape: CT_DIST=ON but MPI was not found (install libopenmpi-dev)")
  endif()
endif()

if(CT_WITH_DIST AND CT_WITH_CUDA)
  find_path(CT_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV NCCL_HOME
            PATH_SUFFIXES include)
  find_library(CT_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
               ENV NCCL_HOME PATH_SUFFIXES lib lib64)
  if(CT_NCCL_INCLUDE_DIR AND CT_NCCL_LIBRARY)
    set(CT_WITH_NCCL ON)
    add_library(CT::nccl UNKNOWN IMPORTED)
    set_target_properties(CT::nccl PROPERTIES IMPORTED_LOCATION ${CT_NCCL_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${CT_NCCL_INCLUDE_DIR})
  else()
    message(STATUS "convtape: NCCL not found: CUDA tensors cannot take part in collectives")
  endif()
endif()
