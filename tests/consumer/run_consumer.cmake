# Installs bitgrad into a scratch prefix, moves the prefix (a package must not depend on where it was
# built or installed), then configures, builds and runs tests/consumer against it:
#   - the exported targets name no path of the build machine (OpenBLAS comes as bitgrad::openblas,
#     found again by bitgradConfig.cmake) and carry no -march=native;
#   - the consumer builds with -Wall -Wextra -Werror, Eigen's headers reaching it as -isystem, even
#     with NO_SYSTEM_FROM_IMPORTED;
#   - the BLAS choice made at install time is honoured, with a clear error when OpenBLAS is missing,
#     and BITGRAD_USE_BLAS=OFF before find_package opts out; bitgrad::native opts in to -march=native.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
set(moved ${WORK_DIR}/elsewhere)
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer step failed (${rc}): ${ARGV}")
  endif()
endfunction()
function(fail what)
  message(FATAL_ERROR "find_package consumer: ${what}")
endfunction()
# configure_app(<dir> <args...>): configures tests/consumer against the moved prefix.
function(configure_app dir)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/${dir} -G ${GENERATOR}
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCMAKE_PREFIX_PATH=${moved} ${ARGN})
endfunction()
# compile_line(<out> <dir>): the command that compiles main.cpp.
function(compile_line out dir)
  file(READ ${WORK_DIR}/${dir}/compile_commands.json commands)
  string(JSON line GET "${commands}" 0 command)
  set(${out} " ${line} " PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/lib -G ${GENERATOR} -DBITGRAD_BUILD_TESTS=OFF
    -DBITGRAD_BUILD_BENCH=OFF -DBITGRAD_BUILD_EXAMPLES=OFF -DBITGRAD_USE_BLAS=${USE_BLAS} -DCMAKE_INSTALL_PREFIX=${prefix})
run(${CMAKE_COMMAND} --install ${WORK_DIR}/lib)
load_cache(${WORK_DIR}/lib READ_WITH_PREFIX lib_ BITGRAD_OPENBLAS_OPENMP BITGRAD_USE_BLAS)
set(with_blas OFF)
if(NOT lib_BITGRAD_USE_BLAS STREQUAL "OFF" AND lib_BITGRAD_OPENBLAS_OPENMP)
  set(with_blas ON)
endif()
message(STATUS "package installed with OpenBLAS: ${with_blas} (${lib_BITGRAD_OPENBLAS_OPENMP})")

# The installed CMake files: relocatable, nothing imposed on consumers' compile flags.
file(GLOB_RECURSE installed ${prefix}/*.cmake)
foreach(f IN LISTS installed)
  file(READ ${f} text)
  foreach(path IN ITEMS "${WORK_DIR}" "${SOURCE_DIR}" "${lib_BITGRAD_OPENBLAS_OPENMP}")
    string(FIND "${text}" "${path}" at)
    if(path AND at GREATER -1)
      fail("${f} names ${path}, a path of the machine that built the package")
    endif()
  endforeach()
  if(f MATCHES "bitgradTargets[^/]*\\.cmake$")
    if(text MATCHES "-march=native")
      fail("${f} exports -march=native (consumers opt in with bitgrad::native)")
    endif()
    if(text MATCHES "[\";]/[A-Za-z]")
      fail("${f} holds an absolute path")
    endif()
  endif()
endforeach()
file(RENAME ${prefix} ${moved})

# A consumer with -Wall -Wextra -Werror builds and runs, with the package's BLAS choice.
configure_app(app -DCONSUMER_EXPECT_BLAS=${with_blas})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/app)
run(${WORK_DIR}/app/consumer)
compile_line(line app)
if(line MATCHES "-march=native")
  fail("the consumer compiles with -march=native without asking for it: ${line}")
endif()
file(READ ${WORK_DIR}/app/eigen_include_dirs.txt eigen_dirs)
foreach(dir IN LISTS eigen_dirs)
  string(FIND "${line}" " -isystem ${dir} " at)
  if(at EQUAL -1)
    fail("Eigen's ${dir} does not reach the consumer as -isystem: ${line}")
  endif()
endforeach()

# Opting in to -march=native; Eigen stays a system header when imported targets' are not.
configure_app(app_native -DCONSUMER_NATIVE=ON -DCMAKE_NO_SYSTEM_FROM_IMPORTED=ON -DCONSUMER_EXPECT_BLAS=${with_blas})
compile_line(line app_native)
if(NOT line MATCHES " -march=native ")
  fail("bitgrad::native does not add -march=native: ${line}")
endif()
foreach(dir IN LISTS eigen_dirs)
  string(FIND "${line}" " -isystem ${dir} " at)
  if(at EQUAL -1)
    fail("with NO_SYSTEM_FROM_IMPORTED, Eigen's ${dir} is not -isystem: ${line}")
  endif()
endforeach()

# BITGRAD_USE_BLAS=OFF before find_package: Eigen's own GEMM, no OpenBLAS on the link line.
configure_app(app_noblas -DBITGRAD_USE_BLAS=OFF)
compile_line(line app_noblas)
if(line MATCHES "EIGEN_USE_BLAS")
  fail("BITGRAD_USE_BLAS=OFF still defines EIGEN_USE_BLAS: ${line}")
endif()

# Installed with OpenBLAS, and OpenBLAS missing here: find_package fails and says what to do.
if(with_blas)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/app_missing -G ${GENERATOR}
                          -DCMAKE_PREFIX_PATH=${moved} -DBITGRAD_OPENBLAS_OPENMP=${WORK_DIR}/nowhere/libopenblas.so
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    fail("find_package(bitgrad) succeeded without the OpenBLAS the package was installed with")
  endif()
  string(REGEX REPLACE "[ \n]+" " " said "${out}${err}")
  if(NOT said MATCHES "libopenblas-openmp-dev" OR NOT said MATCHES "BITGRAD_USE_BLAS=OFF")
    fail("the missing-OpenBLAS error does not say what to do: ${out}${err}")
  endif()
endif()
