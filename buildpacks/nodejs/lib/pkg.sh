#!/usr/bin/env bash
# Usage: source lib/pkg.sh — read package.json (through lib/pkgjson.py and the stack's python3).

# pkg::run BUILD_DIR ARGS... — run pkgjson.py on BUILD_DIR/package.json; a package.json
# that cannot be read ends the build with the reason.
pkg::run() {
	local build_dir=$1 status=0
	shift
	python3 "$BUILDPACK_DIR/lib/pkgjson.py" "$build_dir/package.json" "$@" || status=$?
	if ((status == 3)); then
		output::fail "package.json is not valid JSON (the reason is above)." \
			"" \
			"To fix it, check it with 'node -e \"require(\\\"./package.json\\\")\"', commit and push again."
	fi
	return "$status"
}

# pkg::get BUILD_DIR KEY.PATH — print a string field of package.json (empty when absent).
pkg::get() {
	pkg::run "$1" get "$2"
}

# pkg::has_script BUILD_DIR NAME — succeed when package.json has a non-empty scripts.NAME.
pkg::has_script() {
	local status=0
	pkg::run "$1" has-script "$2" || status=$?
	((status == 0)) && return 0
	((status == 1)) && return 1
	output::exit_reported
}
