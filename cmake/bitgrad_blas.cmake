# OpenBLAS, OpenMP build (Debian: libopenblas-openmp-dev). Its threads are OpenMP's threads, so it
# shares one pool with Eigen and bitgrad's loops; the pthreads build would fight them for 2 cores.
set(BITGRAD_BLAS_LIBRARY "")
if(NOT BITGRAD_USE_BLAS STREQUAL "OFF")
  find_library(BITGRAD_OPENBLAS_OPENMP openblas
    PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
  if(BITGRAD_OPENBLAS_OPENMP)
    set(BITGRAD_BLAS_LIBRARY ${BITGRAD_OPENBLAS_OPENMP})
    message(STATUS "bitgrad: GEMM through OpenBLAS (OpenMP build): ${BITGRAD_OPENBLAS_OPENMP}")
  elseif(BITGRAD_USE_BLAS STREQUAL "ON")
    message(FATAL_ERROR "BITGRAD_USE_BLAS=ON but OpenBLAS's OpenMP build was not found; "
                        "install libopenblas-openmp-dev or configure with -DBITGRAD_USE_BLAS=OFF")
  else()
    message(STATUS "bitgrad: OpenBLAS (OpenMP build) not found; GEMM through Eigen")
  endif()
endif()
