#!/usr/bin/env bash
# Usage: source lib/cache.sh — keep the built virtualenv in CACHE_DIR between builds.
#
# Layout of CACHE_DIR:
#   uv/                   uv's package cache (UV_CACHE_DIR)
#   python/venv/          the dependency virtualenv of the last successful build
#   python/fingerprint    the fingerprint that venv was built for
# The fingerprint is written last and removed first, so a build interrupted
# half-way never leaves a venv that looks valid.

# shellcheck source-path=SCRIPTDIR source=tree.sh
source "${BASH_SOURCE[0]%/*}/tree.sh"

# cache::link_mode CACHE_DIR BUILD_DIR — the uv link mode for these directories.
cache::link_mode() {
	if cache::same_filesystem "$1" "$2"; then
		echo hardlink
	else
		echo copy
	fi
}

# cache::restore_venv CACHE_DIR FINGERPRINT VENV — put the cached venv at VENV
# when it was built for FINGERPRINT; fail (status 1) otherwise.
cache::restore_venv() {
	local cache_dir=$1 fingerprint=$2 venv=$3 stored=""
	[[ -n "$fingerprint" && -d "$cache_dir/python/venv" && -f "$cache_dir/python/fingerprint" ]] || return 1
	stored=$(<"$cache_dir/python/fingerprint")
	[[ "$stored" == "$fingerprint" ]] || return 1
	cache::copy_tree "$cache_dir/python/venv" "$venv"
}

# cache::save_venv CACHE_DIR FINGERPRINT VENV — remember VENV for FINGERPRINT.
# An empty fingerprint (dependencies that cannot be fingerprinted) drops the
# cached venv instead.
cache::save_venv() {
	local cache_dir=$1 fingerprint=$2 venv=$3
	mkdir -p -- "$cache_dir/python"
	rm -f -- "$cache_dir/python/fingerprint"
	rm -rf -- "$cache_dir/python/venv" "$cache_dir/python/venv.new"
	[[ -n "$fingerprint" ]] || return 0
	cache::copy_tree "$venv" "$cache_dir/python/venv.new"
	mv -- "$cache_dir/python/venv.new" "$cache_dir/python/venv"
	printf '%s\n' "$fingerprint" >"$cache_dir/python/fingerprint"
}
