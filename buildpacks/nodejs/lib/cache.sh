#!/usr/bin/env bash
# Usage: source lib/cache.sh — keep node_modules and cacheDirectories in CACHE_DIR.
#
# Layout of CACHE_DIR/nodejs:
#   dist/VERSION/     unpacked Node.js trees (lib/nodebin.py)
#   npm/ yarn/ yarn-berry/ pnpm-store/ corepack/   the package managers' own caches
#   modules/full/     node_modules as installed (devDependencies included)
#   modules/pruned/   node_modules after pruning, as it goes into the slug
#   modules/fingerprint  what both were installed for
#   dirs/PATH/        each cacheDirectories entry other than node_modules
# The fingerprint is written last and removed first, so an interrupted build never
# leaves trees that look valid.

# shellcheck source-path=SCRIPTDIR source=tree.sh
source "${BASH_SOURCE[0]%/*}/tree.sh"

# cache::fingerprint BUILD_DIR — print a hash of what decides node_modules: the
# buildpack's version, Node's version, the manager and its lockfile, and package.json's
# dependency fields.
cache::fingerprint() {
	local build_dir=$1
	{
		printf 'buildpack %s\nnode %s\nmanager %s berry=%s lock=%s\n' \
			"$(<"$BUILDPACK_DIR/VERSION")" "$NODE_VERSION" "$MANAGER" "$MANAGER_BERRY" "$MANAGER_LOCK"
		printf 'deps %s\n' "$PKG_DEPS_DIGEST"
		[[ -z "$MANAGER_LOCK" ]] || cat -- "$build_dir/$MANAGER_LOCK"
	} | sha256sum | cut -d' ' -f1
}

# cache::restore_modules CACHE_DIR FINGERPRINT BUILD_DIR — put the cached full
# node_modules in BUILD_DIR when it was installed for FINGERPRINT; status 1 otherwise.
cache::restore_modules() {
	local cache_dir=$1 fingerprint=$2 build_dir=$3 modules="$1/nodejs/modules"
	[[ -f "$modules/fingerprint" && -d "$modules/full" && -d "$modules/pruned" ]] || return 1
	[[ "$(<"$modules/fingerprint")" == "$fingerprint" ]] || return 1
	cache::copy_tree "$modules/full" "$build_dir/node_modules"
}

# cache::pruned_modules CACHE_DIR BUILD_DIR — replace node_modules by the cached pruned tree.
cache::pruned_modules() {
	local cache_dir=$1 build_dir=$2
	rm -rf -- "$build_dir/node_modules"
	cache::copy_tree "$cache_dir/nodejs/modules/pruned" "$build_dir/node_modules"
}

# cache::forget_modules CACHE_DIR — drop the cached trees (before a fresh install).
cache::forget_modules() {
	rm -f -- "$1/nodejs/modules/fingerprint"
	rm -rf -- "$1/nodejs/modules"
}

# cache::save_modules CACHE_DIR BUILD_DIR WHICH — keep BUILD_DIR/node_modules as WHICH
# (full or pruned); a missing node_modules (nothing to install) is kept as empty.
cache::save_modules() {
	local cache_dir=$1 build_dir=$2 which=$3 modules="$1/nodejs/modules"
	mkdir -p -- "$modules" "$build_dir/node_modules"
	rm -rf -- "${modules:?}/$which"
	cache::copy_tree "$build_dir/node_modules" "$modules/$which"
}

# cache::seal_modules CACHE_DIR FINGERPRINT — mark the saved trees valid for FINGERPRINT.
cache::seal_modules() {
	printf '%s\n' "$2" >"$1/nodejs/modules/fingerprint"
}

# cache::directories — the cacheDirectories entries other than node_modules,
# each a relative path inside the app.
cache::directories() {
	local entry
	for entry in "${PKG_CACHE_DIRS[@]}"; do
		[[ "$entry" == node_modules || "$entry" == *..* || "$entry" == /* ]] && continue
		printf '%s\n' "$entry"
	done
}

# cache::restore_directories CACHE_DIR BUILD_DIR — bring back cacheDirectories entries
# the push does not have.
cache::restore_directories() {
	local cache_dir=$1 build_dir=$2 entry
	while IFS= read -r entry; do
		if [[ -d "$cache_dir/nodejs/dirs/$entry" && ! -e "$build_dir/$entry" ]]; then
			mkdir -p -- "$(dirname -- "$build_dir/$entry")"
			cache::copy_tree "$cache_dir/nodejs/dirs/$entry" "$build_dir/$entry"
			output::detail "Restored $entry from the build cache"
		fi
	done < <(cache::directories)
}

# cache::save_directories CACHE_DIR BUILD_DIR — keep the cacheDirectories entries.
cache::save_directories() {
	local cache_dir=$1 build_dir=$2 entry
	rm -rf -- "$cache_dir/nodejs/dirs"
	while IFS= read -r entry; do
		[[ -d "$build_dir/$entry" ]] || continue
		mkdir -p -- "$(dirname -- "$cache_dir/nodejs/dirs/$entry")"
		cache::copy_tree "$build_dir/$entry" "$cache_dir/nodejs/dirs/$entry"
	done < <(cache::directories)
}
