#!/usr/bin/env bash
# Usage: source lib/release.sh — the YAML answer of bin/release.

# release::yaml BUILD_DIR — print the release YAML: a default web process for
# a Django app without a Procfile, otherwise the empty answer.
release::yaml() {
	local build_dir=$1 project=""
	if [[ ! -f "$build_dir/Procfile" ]]; then
		project=$(django::project_name "$build_dir")
	fi
	if [[ -n "$project" ]]; then
		printf -- '---\ndefault_process_types:\n  web: gunicorn %s.wsgi\n' "$project"
	else
		printf -- '--- {}\n'
	fi
}
