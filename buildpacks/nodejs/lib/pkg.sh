#!/usr/bin/env bash
# Usage: source lib/pkg.sh — what package.json says, read once by pkg::load.
# shellcheck disable=SC2034 # the PKG_* globals are this file's output, read elsewhere
#
# After pkg::load BUILD_DIR: PKG_ENGINES_NODE, PKG_MANAGER_SPEC (packageManager),
# PKG_SCRIPTS (the Heroku-relevant scripts present, as keys), PKG_CACHE_DIRS (array),
# PKG_DEPS_DIGEST.

PKG_ENGINES_NODE=""
PKG_MANAGER_SPEC=""
PKG_DEPS_DIGEST=""
declare -A PKG_SCRIPTS=()
PKG_CACHE_DIRS=()

# pkg::load BUILD_DIR — read BUILD_DIR/package.json (lib/pkgjson.py, the stack's python3);
# one that cannot be read ends the build with the reason.
pkg::load() {
	local build_dir=$1 facts key value
	if ! facts=$(python3 -I "$BUILDPACK_DIR/lib/pkgjson.py" "$build_dir/package.json"); then
		output::fail "package.json cannot be read (the reason is above)." \
			"" \
			"To fix it, make package.json a valid JSON object (check it with" \
			"'node -e \"require(\\\"./package.json\\\")\"'), commit and push again."
	fi
	while IFS=$'\t' read -r key value; do
		case $key in
		engines.node) PKG_ENGINES_NODE=$value ;;
		packageManager) PKG_MANAGER_SPEC=$value ;;
		script) PKG_SCRIPTS[$value]=1 ;;
		cache-dir) PKG_CACHE_DIRS+=("$value") ;;
		deps-digest) PKG_DEPS_DIGEST=$value ;;
		esac
	done <<<"$facts"
}

# pkg::has_script NAME — succeed when package.json has a non-empty scripts.NAME.
pkg::has_script() {
	[[ -n "${PKG_SCRIPTS[$1]:-}" ]]
}
