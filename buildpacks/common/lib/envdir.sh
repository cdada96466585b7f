#!/usr/bin/env bash
# Usage: source lib/envdir.sh — read config vars from ENV_DIR (file name = key, content =
# value). The sourcing buildpack sets CONFIG_DENYLIST_REGEX: the keys it never exports.

# config::get ENV_DIR KEY — print the config var KEY (empty when unset).
config::get() {
	local env_dir=$1 key=$2
	if [[ -n "$env_dir" && -f "$env_dir/$key" ]]; then
		cat -- "$env_dir/$key"
	fi
}

# config::export_all ENV_DIR — export every config var except the denylisted ones.
config::export_all() {
	local env_dir=$1 file key
	[[ -n "$env_dir" && -d "$env_dir" ]] || return 0
	for file in "$env_dir"/*; do
		[[ -f "$file" ]] || continue
		key=${file##*/}
		[[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
		[[ "$key" =~ $CONFIG_DENYLIST_REGEX ]] && continue
		export "$key=$(cat -- "$file")"
	done
}
