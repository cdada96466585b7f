#!/usr/bin/env bash
# Usage: source lib/compile.sh — the steps of bin/compile, in Heroku's order.
#
# heroku-prebuild, install (devDependencies included), heroku-postbuild or build, prune
# devDependencies, heroku-cleanup. Invariant: BUILD_DIR/node_modules is either installed
# by the package manager or restored from trees cached for the same fingerprint (same
# lockfile, dependency fields, Node.js and manager); an unchanged lockfile installs nothing.

# compile::abs_dir DIR — print DIR as an absolute path with symlinks resolved.
compile::abs_dir() {
	(cd -- "$1" && pwd -P)
}

# compile::script_if_present BUILD_DIR NAME — run scripts.NAME when package.json has it.
compile::script_if_present() {
	if pkg::has_script "$2"; then
		manager::run_script "$1" "$2"
	fi
}

# compile::build_script BUILD_DIR — heroku-postbuild when present, else build.
compile::build_script() {
	local build_dir=$1
	if pkg::has_script heroku-postbuild; then
		manager::run_script "$build_dir" heroku-postbuild
	elif pkg::has_script build; then
		manager::run_script "$build_dir" build
	fi
}

# compile::dependencies BUILD_DIR CACHE_DIR ENV_DIR — install, build and prune, using the
# cached node_modules when the fingerprint matches.
compile::dependencies() {
	local build_dir=$1 cache_dir=$2 env_dir=$3 fingerprint="" keep=0 restored=0
	manager::keeps_dev "$env_dir" && keep=1
	if config::is_false "$(config::get "$env_dir" NODE_MODULES_CACHE)"; then
		output::detail "NODE_MODULES_CACHE is false: node_modules is not cached"
	else
		fingerprint="$(cache::fingerprint "$build_dir")-keep$keep"
	fi
	if [[ -n "$fingerprint" ]] && cache::restore_modules "$cache_dir" "$fingerprint" "$build_dir"; then
		restored=1
		output::step "Dependencies unchanged (same lockfile and Node.js $NODE_VERSION): reusing node_modules from the build cache"
	else
		cache::forget_modules "$cache_dir"
		manager::install "$build_dir"
		[[ -z "$fingerprint" ]] || cache::save_modules "$cache_dir" "$build_dir" full
	fi

	compile::build_script "$build_dir"

	if ((keep)); then
		output::step "Keeping devDependencies (${MANAGER^^}_PRODUCTION is false)"
	elif ((restored)); then
		output::step "Pruning devDependencies (from the build cache)"
		cache::pruned_modules "$cache_dir" "$build_dir"
	else
		manager::prune "$build_dir"
	fi
	if [[ -n "$fingerprint" ]] && ((!restored)); then
		cache::save_modules "$cache_dir" "$build_dir" pruned
		cache::seal_modules "$cache_dir" "$fingerprint"
	fi
}

# compile::main BUILD_DIR CACHE_DIR [ENV_DIR] — the whole build.
compile::main() {
	if (($# < 2)); then
		output::fail "Usage: bin/compile BUILD_DIR CACHE_DIR [ENV_DIR]"
	fi
	local build_dir=$1 cache_dir=$2 env_dir=${3:-} work
	[[ -d "$build_dir" ]] || output::fail "BUILD_DIR '$build_dir' is not a directory."
	mkdir -p -- "$cache_dir/nodejs" || output::fail "Cannot create CACHE_DIR '$cache_dir'."
	build_dir=$(compile::abs_dir "$build_dir")
	cache_dir=$(compile::abs_dir "$cache_dir")
	[[ -z "$env_dir" ]] || env_dir=$(compile::abs_dir "$env_dir")

	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf -- '$work'" EXIT

	config::export_all "$env_dir"
	config::export_network
	export NODE_ENV=${NODE_ENV:-production}
	# pnpm copies out of its store: slug files must not share inodes with the cache.
	export npm_config_package_import_method=copy

	pkg::load "$build_dir"
	manager::select "$build_dir" # first: a bad lockfile set fails before any download
	runtime::install "$build_dir" "$cache_dir" "$env_dir" "$work"
	manager::prepare "$build_dir" "$cache_dir"

	if [[ -e "$build_dir/node_modules" || -L "$build_dir/node_modules" ]]; then
		output::warning "The app contains a node_modules directory; it is replaced by the build." \
			"Add node_modules to .gitignore so it is not pushed."
		rm -rf -- "$build_dir/node_modules"
	fi
	cache::restore_directories "$cache_dir" "$build_dir"

	compile::script_if_present "$build_dir" heroku-prebuild
	compile::dependencies "$build_dir" "$cache_dir" "$env_dir"
	compile::script_if_present "$build_dir" heroku-cleanup

	cache::save_directories "$cache_dir" "$build_dir"
	manager::save_tools "$cache_dir"
	profile::write "$build_dir" "$NODE_BIN"
}
