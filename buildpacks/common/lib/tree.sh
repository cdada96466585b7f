#!/usr/bin/env bash
# Usage: source lib/tree.sh — copying directory trees between a build and its cache.

# cache::same_filesystem A B — succeed when directories A and B share a device, so files
# can be hardlinked between them instead of copied.
cache::same_filesystem() {
	[[ "$(stat -c %d -- "$1")" == "$(stat -c %d -- "$2")" ]]
}

# cache::copy_tree SRC DEST — copy a directory tree, as hardlinks when possible. Safe for
# what the built-ins cache: installers replace files rather than edit them in place
# (uv, npm, yarn, pnpm; Python itself only adds __pycache__ files).
cache::copy_tree() {
	local src=$1 dest=$2
	if cache::same_filesystem "$src" "$(dirname -- "$dest")"; then
		cp -al -- "$src" "$dest" 2>/dev/null && return 0
		rm -rf -- "$dest"
	fi
	cp -a -- "$src" "$dest"
}
