# CPack: `cpack -G DEB` in a build directory makes rtopacks-sync_<version>_<arch>.deb for Debian 12.
#
# Configure a packaging build with -DCMAKE_INSTALL_PREFIX=/usr (and without sanitizers): the units' ExecStart=
# paths and the daemons' default schedules_dir are taken from the prefix at configure time, and the package
# installs under the same prefix, so the two always agree.  The maintainer scripts (cmake/debian/) create the users
# (systemd-sysusers) and the directories (systemd-tmpfiles), install /etc/rtopacks-sync/sync.conf from the sample
# if there is none, and never enable or start anything (docs/install.md says how); an upgrade restarts the daemons
# that run.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "packaging: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; a .deb for Debian wants "
                 "-DCMAKE_INSTALL_PREFIX=/usr")
endif()
if(RTOPACKS_SANITIZE)
  message(STATUS "packaging: this is a sanitizer build; do not ship its .deb")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rtopacks-sync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "RTOpacks Pty Ltd")
set(CPACK_PACKAGE_CONTACT "RTOpacks operations <admin@rtopacks.com.au>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "RTOpacks sync daemons: TGA register, CRICOS, QuickBooks reconciliation")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "RTOpacks sync daemons: TGA register, CRICOS, QuickBooks reconciliation
Event-loop daemons that keep RTOpacks' copies of the National Register of VET
(training.gov.au) and of CRICOS (data.gov.au), and its QuickBooks Online
invoices, in step. Fired by systemd timers; with an operator CLI (syncctl),
missed-run detection and Prometheus textfile metrics.")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps (dpkg-dev); systemd provides sysusers/tmpfiles, tzdata the zones
# the schedules are evaluated in.
find_program(DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  message(STATUS "packaging: dpkg-shlibdeps not found (apt-get install dpkg-dev): library dependencies listed by hand")
  set(rtopacks_libdeps ", libcurl4, libxml2, libsqlite3-0, libev4, libcjson1, libinih1")
endif()
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd (>= 247), tzdata${rtopacks_libdeps}")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "prometheus-node-exporter")

set(RTOPACKS_PKG_SYSUSERS "${CMAKE_INSTALL_PREFIX}/${RTOPACKS_SYSUSERSDIR}/rtopacks-sync.conf")
set(RTOPACKS_PKG_TMPFILES "${CMAKE_INSTALL_PREFIX}/${RTOPACKS_TMPFILESDIR}/rtopacks-sync.conf")
set(RTOPACKS_PKG_SAMPLE "${CMAKE_INSTALL_FULL_DATADIR}/rtopacks-sync/sync.conf.sample")
get_property(rtopacks_pkg_scheduled GLOBAL PROPERTY RTOPACKS_SCHEDULED_DAEMONS)
set(RTOPACKS_PKG_UNITS "")
set(RTOPACKS_PKG_DAEMON_SERVICES "")
foreach(d IN LISTS rtopacks_pkg_scheduled)
  if(TARGET ${d})
    string(APPEND RTOPACKS_PKG_UNITS " ${d}-run.timer ${d}-run.service ${d}.service")
    string(APPEND RTOPACKS_PKG_DAEMON_SERVICES " ${d}.service")
  endif()
endforeach()
string(STRIP "${RTOPACKS_PKG_UNITS}" RTOPACKS_PKG_UNITS)
string(STRIP "${RTOPACKS_PKG_DAEMON_SERVICES}" RTOPACKS_PKG_DAEMON_SERVICES)
foreach(script postinst prerm postrm)
  configure_file("${CMAKE_SOURCE_DIR}/cmake/debian/${script}.in" "${CMAKE_BINARY_DIR}/debian/${script}" @ONLY
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${CMAKE_BINARY_DIR}/debian/postinst;${CMAKE_BINARY_DIR}/debian/prerm;${CMAKE_BINARY_DIR}/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
