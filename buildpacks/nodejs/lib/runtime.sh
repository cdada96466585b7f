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

# Minutes a resolved version is reused without asking the source again: a warm push
# then needs no index round trip, and a new patch release is picked up within the hour.
RUNTIME_RESOLVED_MINUTES=60

# runtime::recall CACHE_DIR SOURCE RANGE — print "VERSION<TAB>DIR" when the same SOURCE
# and RANGE were resolved less than RUNTIME_RESOLVED_MINUTES ago and DIR is still there.
runtime::recall() {
	local file="$1/nodejs/resolved" source=$2 range=$3 s r version dir
	[[ -f "$file" ]] || return 1
	(($(date +%s) - $(stat -c %Y -- "$file") < RUNTIME_RESOLVED_MINUTES * 60)) || return 1
	IFS=$'\t' read -r s r version dir <"$file" || return 1
	[[ "$s" == "$source" && "$r" == "$range" && -n "$version" ]] || return 1
	[[ "$dir" == /usr || -x "$dir/bin/node" ]] || return 1
	printf '%s\t%s\n' "$version" "$dir"
}

# runtime::resolve CACHE_DIR SOURCE RANGE WORK_DIR — print "VERSION<TAB>DIR", the
# newest version in RANGE, installed in the cache (lib/nodebin.py); fail with its help.
runtime::resolve() {
	local cache_dir=$1 source=$2 range=$3 work=$4 answer
	if answer=$(runtime::recall "$cache_dir" "$source" "$range"); then
		printf '%s\n' "$answer"
		return 0
	fi
	if ! answer=$(python3 -I "$BUILDPACK_DIR/lib/nodebin.py" select "$source" "$range" "$cache_dir" 2>"$work/nodebin.err"); then
		local -a lines=()
		mapfile -t lines <"$work/nodebin.err"
		output::fail "${lines[@]}"
	fi
	if [[ -s "$work/nodebin.err" ]]; then
		output::warning "$(<"$work/nodebin.err")"
	else
		printf '%s\t%s\t%s\n' "$source" "$range" "$answer" >"$cache_dir/nodejs/resolved"
	fi
	printf '%s\n' "$answer"
}

# runtime::install BUILD_DIR CACHE_DIR ENV_DIR WORK_DIR
runtime::install() {
	local build_dir=$1 cache_dir=$2 env_dir=$3 work=$4 wanted source answer dir
	wanted=$PKG_ENGINES_NODE
	source=$(config::get "$env_dir" NODE_BINARY_SOURCE)
	source=${source:-${PAAS_NODE_BINARY_SOURCE:-pypi}}
	answer=$(runtime::resolve "$cache_dir" "$source" "$wanted" "$work")
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
