#!/usr/bin/env bash
# Usage: source lib/config.sh — config vars (ENV_DIR) and package index settings.
#
# Config vars arrive as files in ENV_DIR (file name = key, content = value)
# and are not exported for the buildpack. Only the few this buildpack needs
# are read: DISABLE_COLLECTSTATIC and the package index settings below.

# Index settings a user may set as config vars for a private index; when
# present in ENV_DIR they override the build host's values.
CONFIG_INDEX_VARS=(
	PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_TRUSTED_HOST
	UV_INDEX_URL UV_EXTRA_INDEX_URL UV_DEFAULT_INDEX UV_INDEX UV_FIND_LINKS
	UV_INDEX_STRATEGY UV_KEYRING_PROVIDER
)

# Config vars that must never leak into build subprocesses (collectstatic):
# they would break the interpreter or the build environment.
CONFIG_DENYLIST_REGEX='^(PATH|HOME|PWD|SHLVL|IFS|PYTHONHOME|PYTHONPATH|VIRTUAL_ENV|LD_.*|UV_.*|PIP_.*|BASH_ENV|ENV)$'

# shellcheck source-path=SCRIPTDIR source=envdir.sh
source "${BASH_SOURCE[0]%/*}/envdir.sh"
# (its config::export_all: call it only in a subshell that runs app code, collectstatic,
# whose settings module commonly reads SECRET_KEY and similar from the environment)

# config::is_true ENV_DIR KEY — succeed when KEY is set to 1/true/yes/on.
config::is_true() {
	local value
	value=$(config::get "$1" "$2")
	value=${value//[[:space:]]/}
	[[ "${value,,}" =~ ^(1|true|yes|on)$ ]]
}

# config::export_index_settings ENV_DIR — export index settings from config
# vars, then map pip's settings onto uv's where uv's are unset, so a build
# host (or app) configured for pip behaves the same with uv.
config::export_index_settings() {
	local env_dir=$1 key value
	for key in "${CONFIG_INDEX_VARS[@]}"; do
		if [[ -n "$env_dir" && -f "$env_dir/$key" ]]; then
			value=$(config::get "$env_dir" "$key")
			export "$key=$value"
		fi
	done

	if [[ -z "${UV_DEFAULT_INDEX:-}" && -z "${UV_INDEX_URL:-}" && -n "${PIP_INDEX_URL:-}" ]]; then
		export UV_DEFAULT_INDEX=$PIP_INDEX_URL
	fi
	if [[ -z "${UV_INDEX:-}" && -z "${UV_EXTRA_INDEX_URL:-}" && -n "${PIP_EXTRA_INDEX_URL:-}" ]]; then
		# pip separates several URLs with whitespace; so does UV_INDEX.
		export UV_INDEX=$PIP_EXTRA_INDEX_URL
	fi
	if [[ -z "${UV_FIND_LINKS:-}" && -n "${PIP_FIND_LINKS:-}" ]]; then
		# pip separates with whitespace, uv with commas.
		value=$(printf '%s' "$PIP_FIND_LINKS" | tr -s '[:space:]' ',')
		export UV_FIND_LINKS=${value%,}
	fi
	if [[ -z "${UV_INSECURE_HOST:-}" && -n "${PIP_TRUSTED_HOST:-}" ]]; then
		export UV_INSECURE_HOST=$PIP_TRUSTED_HOST
	fi
	if [[ -z "${SSL_CERT_FILE:-}" ]]; then
		if [[ -n "${PIP_CERT:-}" ]]; then
			export SSL_CERT_FILE=$PIP_CERT
		elif [[ -n "${REQUESTS_CA_BUNDLE:-}" ]]; then
			export SSL_CERT_FILE=$REQUESTS_CA_BUNDLE
		fi
	fi
}
