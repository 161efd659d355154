# Debian's hardening flags for every optimised build that is not a sanitizer or fuzz build (Release, the .deb,
# RelWithDebInfo, the default): the flags Debian's own packages get from dpkg-buildflags, with every hardening
# feature on (DEB_BUILD_MAINT_OPTIONS=hardening=+all): stack protector, _FORTIFY_SOURCE, -z relro -z now, PIE.
# Optimisation is dpkg-buildflags' -O2; CMake's Release default of -O3 is dropped.
#
# -frecord-gcc-switches keeps the compile options in the binary (section .GCC.command.line), so that
# tests/security/test_hardening.py and the .deb test can check what a binary was built with (readelf).
option(RTOPACKS_HARDENING "Build optimised binaries with Debian's hardening flags (dpkg-buildflags)" ON)

set(RTOPACKS_HARDENED OFF)
string(TOUPPER "${CMAKE_BUILD_TYPE}" _rtopacks_bt)
if(RTOPACKS_HARDENING AND NOT RTOPACKS_SANITIZE AND NOT RTOPACKS_FUZZ
   AND _rtopacks_bt MATCHES "^(RELEASE|RELWITHDEBINFO|MINSIZEREL)$")
  set(RTOPACKS_HARDENED ON)
  find_program(DPKG_BUILDFLAGS dpkg-buildflags)
  if(DPKG_BUILDFLAGS)
    foreach(var CFLAGS CPPFLAGS LDFLAGS)
      execute_process(COMMAND ${CMAKE_COMMAND} -E env DEB_BUILD_MAINT_OPTIONS=hardening=+all
                              ${DPKG_BUILDFLAGS} --get ${var}
                      WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
                      OUTPUT_VARIABLE _rtopacks_${var} OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "dpkg-buildflags --get ${var} failed (${rc})")
      endif()
    endforeach()
  else()
    # The same flags by hand (Debian 12's dpkg-buildflags with hardening=+all), for a machine without dpkg-dev.
    message(STATUS "hardening: dpkg-buildflags not found (apt-get install dpkg-dev): using Debian 12's flags")
    set(_rtopacks_CFLAGS "-g -O2 -fstack-protector-strong -Wformat -Werror=format-security")
    set(_rtopacks_CPPFLAGS "-Wdate-time -D_FORTIFY_SOURCE=2")
    set(_rtopacks_LDFLAGS "-Wl,-z,relro -Wl,-z,now")
  endif()
  # The optimisation level is dpkg-buildflags' alone: no -O3 (Release) or second -O2 after it.
  foreach(bt RELEASE RELWITHDEBINFO MINSIZEREL)
    set(CMAKE_C_FLAGS_${bt} "-DNDEBUG")
  endforeach()
  string(APPEND CMAKE_C_FLAGS " ${_rtopacks_CFLAGS} ${_rtopacks_CPPFLAGS} -frecord-gcc-switches")
  string(APPEND CMAKE_EXE_LINKER_FLAGS " ${_rtopacks_LDFLAGS}")
  set(CMAKE_POSITION_INDEPENDENT_CODE ON)
  include(CheckPIESupported)
  check_pie_supported(LANGUAGES C)
  message(STATUS "hardening: ${CMAKE_C_FLAGS} | ${CMAKE_EXE_LINKER_FLAGS}")
endif()
