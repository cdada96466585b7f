#!/usr/bin/env bash
# Usage: source lib/release.sh — the YAML answer of bin/release.

# release::yaml BUILD_DIR — `web: npm start` when the app can be started that way (a
# start script, or a server.js that `npm start` runs by default) and has no Procfile;
# otherwise the empty answer.
release::yaml() {
	local build_dir=$1
	[[ -f "$build_dir/Procfile" || ! -f "$build_dir/package.json" ]] || pkg::load "$build_dir"
	if [[ ! -f "$build_dir/Procfile" && -f "$build_dir/package.json" ]] &&
		{ [[ -f "$build_dir/server.js" ]] || pkg::has_script start; }; then
		printf -- '---\ndefault_process_types:\n  web: npm start\n'
	else
		printf -- '--- {}\n'
	fi
}
