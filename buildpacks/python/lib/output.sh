#!/usr/bin/env bash
# Usage: source lib/output.sh — Heroku-style build output helpers.
#
# Steps start with "-----> ", detail lines with seven spaces, errors and
# warnings with " !     " so they stand out in `git push` output.

# output::step TEXT — announce a build step.
output::step() {
	printf -- '-----> %s\n' "$*"
}

# output::detail TEXT — one indented detail line under the current step.
output::detail() {
	printf -- '       %s\n' "$*"
}

# output::indent — indent every line read on stdin as detail lines.
output::indent() {
	sed -u 's/^./       &/'
}

# output::warning LINE... — a warning block (one argument per line); goes to stderr.
output::warning() {
	local line
	{
		printf ' !\n'
		for line in "$@"; do
			printf ' !     %s\n' "$line"
		done
		printf ' !\n'
	} >&2
}

# output::error LINE... — a help-page style error block on stderr.
# The first line says what is wrong; the rest say how to fix it.
output::error() {
	local line
	{
		printf '\n'
		for line in "$@"; do
			if [[ -n "$line" ]]; then
				printf ' !     %s\n' "$line"
			else
				printf ' !\n'
			fi
		done
		printf '\n'
	} >&2
}

# output::fail LINE... — print an error block and exit non-zero.
output::fail() {
	output::error "$@"
	exit 1
}
