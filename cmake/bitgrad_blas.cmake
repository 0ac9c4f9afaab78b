# OpenBLAS, OpenMP build (Debian: libopenblas-openmp-dev). Its threads are OpenMP's threads, so it
# shares one pool with Eigen and bitgrad's loops; the pthreads build would fight them for 2 cores.
# Read by the build and installed beside bitgradConfig.cmake, which runs it again on the consumer's
# machine: the exported target names bitgrad::openblas, never a library path of the build machine.

# bitgrad_openblas_target(<mode> <out_var>): mode AUTO, ON or OFF (BITGRAD_USE_BLAS). Creates the
# imported target bitgrad::openblas, which carries the library and EIGEN_USE_BLAS / BITGRAD_USE_BLAS
# when OpenBLAS is used and nothing otherwise, and sets <out_var> to the library, to "" (OFF, or AUTO
# and not found) or to NOTFOUND (ON and not found: the caller's error, at configure or find_package).
# BITGRAD_OPENBLAS_OPENMP (cache) may point at libopenblas.so elsewhere.
function(bitgrad_openblas_target mode out_var)
  string(TOUPPER "${mode}" mode)
  if(mode MATCHES "^(ON|YES|TRUE|Y|1)$")
    set(mode ON)
  elseif(mode MATCHES "^(OFF|NO|FALSE|N|0)$")
    set(mode OFF)
  elseif(NOT mode STREQUAL "AUTO")
    message(FATAL_ERROR "BITGRAD_USE_BLAS is '${mode}'; expected AUTO, ON or OFF")
  endif()
  set(lib "")
  if(NOT mode STREQUAL "OFF")
    find_library(BITGRAD_OPENBLAS_OPENMP openblas
      PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH
      DOC "OpenBLAS, OpenMP build (libopenblas.so)")
    if(BITGRAD_OPENBLAS_OPENMP AND EXISTS "${BITGRAD_OPENBLAS_OPENMP}")
      set(lib "${BITGRAD_OPENBLAS_OPENMP}")
    endif()
  endif()
  if(NOT TARGET bitgrad::openblas)
    add_library(bitgrad::openblas INTERFACE IMPORTED)
    if(lib)
      set_target_properties(bitgrad::openblas PROPERTIES
        INTERFACE_LINK_LIBRARIES "${lib}"
        INTERFACE_COMPILE_DEFINITIONS "EIGEN_USE_BLAS;BITGRAD_USE_BLAS")
    endif()
  endif()
  if(mode STREQUAL "ON" AND NOT lib)
    set(lib NOTFOUND)
  endif()
  set(${out_var} "${lib}" PARENT_SCOPE)
endfunction()
