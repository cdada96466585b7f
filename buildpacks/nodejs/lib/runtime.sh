#!/usr/bin/env bash
# Usage: source lib/runtime.sh — choose and install Node.js for the app.
# shellcheck disable=SC2034 # the NODE_* globals are this file's output, read elsewhere
#
# engines.node (a semver range; empty: the newest LTS) is resolved by lib/nodebin.py
# against NODE_BINARY_SOURCE (config var, else the host's PAAS_NODE_BINARY_SOURCE, else
# pypi), which keeps one unpacked tree per version in CACHE_DIR/nodejs/dist. The app gets
# a copy in BUILD_DIR/.heroku/node (hardlinked when the filesystems allow).
#
# After runtime::install: NODE_VERSION (e.g. 24.19.0) and NODE_BIN (the bin directory
# with node and npm, first on PATH).

NODE_VERSION=""
NODE_BIN=""

# runtime::install BUILD_DIR CACHE_DIR ENV_DIR WORK_DIR
runtime::install() {
	local build_dir=$1 cache_dir=$2 env_dir=$3 work=$4 wanted source answer dir
	wanted=$(pkg::get "$build_dir" engines.node)
	source=$(config::get "$env_dir" NODE_BINARY_SOURCE)
	source=${source:-${PAAS_NODE_BINARY_SOURCE:-pypi}}
	if ! answer=$(python3 "$BUILDPACK_DIR/lib/nodebin.py" select "$source" "$wanted" "$cache_dir" 2>"$work/nodebin.err"); then
		local -a lines=()
		mapfile -t lines <"$work/nodebin.err"
		output::fail "${lines[@]}"
	fi
	[[ -s "$work/nodebin.err" ]] && output::warning "$(<"$work/nodebin.err")"
	NODE_VERSION=${answer%%$'\t'*}
	dir=${answer#*$'\t'}
	if [[ -n "$wanted" ]]; then
		output::step "Using Node.js $NODE_VERSION (engines.node: $wanted; from $source)"
	else
		output::step "Using Node.js $NODE_VERSION (the newest LTS; set engines.node to choose; from $source)"
	fi
	if [[ "$dir" == /usr ]]; then
		NODE_BIN=/usr/bin
	else
		rm -rf -- "$build_dir/.heroku/node"
		mkdir -p -- "$build_dir/.heroku"
		cache::copy_tree "$dir" "$build_dir/.heroku/node"
		NODE_BIN=$build_dir/.heroku/node/bin
	fi
	mkdir -p -- "$build_dir/.heroku/bin"
	export PATH="$NODE_BIN:$build_dir/.heroku/bin:$build_dir/node_modules/.bin:$PATH"
}
