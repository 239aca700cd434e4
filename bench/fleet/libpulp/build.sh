#!/usr/bin/env bash
# Builds libpulp 0.3.16 (from ../shared/anchors, into $1, outside the repository) and, in $2, the
# libpulp side of bench/fleet: libfleet.so.0 (patchable: -fpatchable-function-entry, post-processed
# by `ulp post`), fleetsrv linked against it, and the live patch libfleet_v2.so with its metadata
# (`ulp packer`). Never linked into the project: only bench/fleet runs these.
# Exit 3 when libpulp cannot be built here (missing tarball or packages and not root).
set -euo pipefail
cache="$1" out="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tarball="${LIBPULP_TARBALL:-$here/../../../../shared/anchors/libpulp-0.3.16.tar.gz}"
pulp="$cache/libpulp-0.3.16"
if [ ! -x "$pulp/tools/ulp" ] || [ ! -f "$pulp/lib/.libs/libpulp.so.0" ]; then
  [ -f "$tarball" ] || { echo "libpulp: no $tarball (set LIBPULP_TARBALL)" >&2; exit 3; }
  pkgs="autoconf-archive libelf-dev libjson-c-dev libseccomp-dev libunwind-dev python3-pexpect python3-psutil libtool automake autoconf"
  missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then echo "libpulp: needs packages $missing (run as root, or install them)" >&2; exit 3; fi
    apt-get install -y $missing >&2 || { echo "libpulp: apt-get install $missing failed" >&2; exit 3; }
  fi
  mkdir -p "$cache" && rm -rf "$pulp" && tar xzf "$tarball" -C "$cache"
  (cd "$pulp" && ./bootstrap && ./configure PYTHON=/usr/bin/python3 && make -j2) >"$cache/build.log" 2>&1 ||
    { echo "libpulp: build failed, see $cache/build.log" >&2; exit 3; }
fi
ulp="$pulp/tools/ulp"
mkdir -p "$out" && cd "$out"
# libpulp's own test flags (Makefile.common): 16 nops of which 14 before the entry
cflags="-O2 -fPIC -fpatchable-function-entry=16,14 -fno-inline"
cc $cflags -shared -Wl,--build-id -Wl,--hash-style=sysv -Wl,-soname,libfleet.so.0 -o libfleet.so.0 "$here/libfleet.c"
"$ulp" post libfleet.so.0 >/dev/null 2>&1
cc -O2 -o fleetsrv "$here/fleetsrv.c" "$out/libfleet.so.0" -Wl,-rpath,"$out"
cc -O2 -fPIC -shared -o libfleet_v2.so "$here/libfleet_v2.c"
printf '%s\n@%s\nreply:reply_v2\n' "$out/libfleet_v2.so" "$out/libfleet.so.0" > libfleet_v2.dsc
"$ulp" packer libfleet_v2.dsc >/dev/null 2>&1
echo "$pulp"
