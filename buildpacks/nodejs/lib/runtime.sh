#!/usr/bin/env bash
# Usage: source lib/runtime.sh — choose and install Node.js for the app.
# shellcheck disable=SC2034 # the NODE_* globals are this file's output, read elsewhere
#
# engines.node (a semver range; empty: the newest LTS) is resolved by lib/nodebin.py
# against NODE_BINARY_SOURCE (config var, else the host's PAAS_NODE_BINARY_SOURCE, else
# pypi), which keeps one unpacked tree per version in CACHE_DIR/nodejs/dist and its wheel
# in CACHE_DIR/nodejs/wheels.
#
# Where the platform offers its shared runtime store (PAAS_RUNTIMES, read-only: see
# docs/buildpacks.md, "Shared runtimes"), BUILD_DIR/.heroku/node is a link to the store's
# entry of this wheel and .paas/runtimes.json names it, so the slug carries no copy; when
# the store has no entry yet, the app gets a copy this once and the wheel is offered to
# the store for the next build. Elsewhere the app gets a copy (hardlinked when the
# filesystems allow).
#
# After runtime::install: NODE_VERSION (e.g. 24.19.0) and NODE_BIN (the bin directory
# with node and npm, first on PATH).

NODE_VERSION=""
NODE_BIN=""

# Minutes a resolved version is reused without asking the source again: a warm push
# then needs no index round trip, and a new patch release is picked up within the hour.
RUNTIME_RESOLVED_MINUTES=60

# runtime::recall CACHE_DIR SOURCE RANGE — print "VERSION<TAB>DIR<TAB>SHA256<TAB>WHEEL"
# when the same SOURCE and RANGE were resolved less than RUNTIME_RESOLVED_MINUTES ago and
# DIR is still there.
runtime::recall() {
	local file="$1/nodejs/resolved" source=$2 range=$3 s r version dir sha wheel
	[[ -f "$file" ]] || return 1
	(($(date +%s) - $(stat -c %Y -- "$file") < RUNTIME_RESOLVED_MINUTES * 60)) || return 1
	IFS=$'\t' read -r s r version dir sha wheel <"$file" || return 1
	[[ "$s" == "$source" && "$r" == "$range" && -n "$version" ]] || return 1
	[[ "$dir" == /usr || -x "$dir/bin/node" ]] || return 1
	printf '%s\t%s\t%s\t%s\n' "$version" "$dir" "$sha" "$wheel"
}

# runtime::resolve CACHE_DIR SOURCE RANGE WORK_DIR — print "VERSION<TAB>DIR<TAB>SHA256<TAB>
# WHEEL", the newest version in RANGE, installed in the cache or found in the shared store
# (lib/nodebin.py); fail with its help.
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

# runtime::declare BUILD_DIR KEY JSON — add JSON to the KEY list of .paas/runtimes.json,
# keeping what earlier buildpacks declared there.
runtime::declare() {
	mkdir -p -- "$1/.paas"
	python3 -I -c '
import json, sys
path, key, item = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    with open(path) as f:
        found = json.load(f)
    assert isinstance(found, dict) and isinstance(found.get(key, []), list)
except (OSError, ValueError, AssertionError):
    found = {}
found.setdefault(key, []).append(item)
with open(path, "w") as f:
    json.dump(found, f)
' "$1/.paas/runtimes.json" "$2" "$3"
}

# runtime::place BUILD_DIR DIR SHA256 WHEEL — put Node.js in BUILD_DIR/.heroku/node (a link
# to the shared store's entry, else a copy of DIR); set NODE_BIN.
runtime::place() {
	local build_dir=$1 dir=$2 sha=$3 wheel=$4 name="nodejs-$NODE_VERSION-$3"
	rm -rf -- "$build_dir/.heroku/node"
	mkdir -p -- "$build_dir/.heroku"
	if [[ -n "${PAAS_RUNTIMES:-}" && -n "$sha" && -x "$PAAS_RUNTIMES/$name/bin/node" ]]; then
		ln -s -- "$PAAS_RUNTIMES/$name" "$build_dir/.heroku/node"
		NODE_BIN=$PAAS_RUNTIMES/$name/bin
		runtime::declare "$build_dir" runtimes "\"$name\""
		output::detail "Node.js $NODE_VERSION is the platform's shared copy (not in the slug)"
		return 0
	fi
	cache::copy_tree "$dir" "$build_dir/.heroku/node"
	NODE_BIN=$build_dir/.heroku/node/bin
	if [[ -n "${PAAS_RUNTIMES:-}" && -n "$sha" && -f "$wheel" ]]; then
		runtime::declare "$build_dir" offers \
			"{\"kind\": \"nodejs\", \"version\": \"$NODE_VERSION\", \"sha256\": \"$sha\", \"archive\": \"$wheel\"}"
	fi
}

# runtime::install BUILD_DIR CACHE_DIR ENV_DIR WORK_DIR
runtime::install() {
	local build_dir=$1 cache_dir=$2 env_dir=$3 work=$4 wanted source answer dir sha wheel
	wanted=$PKG_ENGINES_NODE
	source=$(config::get "$env_dir" NODE_BINARY_SOURCE)
	source=${source:-${PAAS_NODE_BINARY_SOURCE:-pypi}}
	answer=$(runtime::resolve "$cache_dir" "$source" "$wanted" "$work")
	IFS=$'\t' read -r NODE_VERSION dir sha wheel <<<"$answer"
	if [[ -n "$wanted" ]]; then
		output::step "Using Node.js $NODE_VERSION (engines.node: $wanted; from $source)"
	else
		output::step "Using Node.js $NODE_VERSION (the newest LTS; set engines.node to choose; from $source)"
	fi
	if [[ "$dir" == /usr ]]; then
		NODE_BIN=/usr/bin
	else
		runtime::place "$build_dir" "$dir" "$sha" "$wheel"
	fi
	mkdir -p -- "$build_dir/.heroku/bin"
	export PATH="$NODE_BIN:$build_dir/.heroku/bin:$build_dir/node_modules/.bin:$PATH"
}
