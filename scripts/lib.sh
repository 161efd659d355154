# Shared by scripts/test, scripts/demo and bench/*: locate the tree, install what is missing, build.
# shellcheck shell=sh

ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ensure_packages FILE...: install the Debian packages listed in FILE(s) that are not installed yet.
ensure_packages() {
	wanted=$(cat "$@" | sed 's/#.*//' | tr -s ' \t' '\n' | sort -u | grep -v '^$')
	missing=
	for p in $wanted; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)"
	fi
	log "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null || die "apt-get install failed:$missing"
}

# build DIR [cmake options...]: configure (once) and build into DIR.
build() {
	dir=$1
	shift
	cmake -S "$ROOT" -B "$dir" "$@" >/dev/null || die "cmake configure failed"
	cmake --build "$dir" -j "$(nproc)" || die "build failed"
}
