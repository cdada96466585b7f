#!/usr/bin/env bash
# Usage: source lib/output.sh — Heroku-style build output helpers.
#
# Steps start with "-----> ", detail lines with seven spaces, errors and
# warnings with " !     " so they stand out in `git push` output.
#
# Every bin/ script runs with `set -Eeuo pipefail`, `shopt -s inherit_errexit`
# and output::trap_unexpected, so a command that fails where no step expected
# it ends the script with one line saying where, instead of a bare exit.
# A failure is said once, however deep in command substitutions it happens: a
# subshell that has said why it failed exits OUTPUT_REPORTED, which the shells
# above it pass on silently; the script itself then exits 1.

OUTPUT_REPORTED=99

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

# output::exit_reported — exit after the reason was printed: OUTPUT_REPORTED in a
# subshell (so the shells above do not report it again), 1 in the script itself.
output::exit_reported() {
	if ((BASH_SUBSHELL > 0)); then
		exit "$OUTPUT_REPORTED"
	fi
	exit 1
}

# output::fail LINE... — print an error block and exit non-zero.
output::fail() {
	output::error "$@"
	output::exit_reported
}

# output::unexpected STATUS FILE LINE COMMAND — the ERR trap: say in one line
# which script failed, where, and on which command; then exit.
output::unexpected() {
	local status=$1 file=$2 line=$3 command=$4 base=${BUILDPACK_DIR:-}
	if ((status != OUTPUT_REPORTED)); then
		[[ -z "$base" ]] || file=${file#"$base"/}
		printf ' !     Unexpected failure in %s at %s:%s (exit status %s): %s\n' \
			"${0#"$base"/}" "$file" "$line" "$status" "$command" >&2
	fi
	output::exit_reported
}

# output::trap_unexpected — install output::unexpected as the ERR trap.
output::trap_unexpected() {
	trap 'output::unexpected "$?" "${BASH_SOURCE[0]:-$0}" "$LINENO" "$BASH_COMMAND"' ERR
}
