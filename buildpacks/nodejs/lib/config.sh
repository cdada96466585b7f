#!/usr/bin/env bash
# Usage: source lib/config.sh — config vars (ENV_DIR) and the registry's CA and proxy.
#
# Like Heroku's Node.js buildpack, config vars are exported to the whole build (build
# scripts read API keys and NPM_CONFIG_* from them), except the few that would break the
# build environment itself.

CONFIG_DENYLIST_REGEX='^(PATH|HOME|PWD|SHLVL|IFS|LD_.*|BASH_ENV|ENV|NODE_OPTIONS|COREPACK_HOME|GIT_DIR|CPATH|CPPATH|LIBRARY_PATH|LANG)$'

# shellcheck source-path=SCRIPTDIR source=envdir.sh
source "${BASH_SOURCE[0]%/*}/envdir.sh"

# config::is_false VALUE — succeed when VALUE is 0/false/no/off.
config::is_false() {
	local value=${1//[[:space:]]/}
	[[ "${value,,}" =~ ^(0|false|no|off)$ ]]
}

# config::export_network — give Node (npm, corepack) the CA bundle the build host gives
# pip, so a registry behind a TLS-inspecting proxy verifies; proxies (HTTPS_PROXY) are
# read by npm and corepack themselves.
config::export_network() {
	if [[ -z "${NODE_EXTRA_CA_CERTS:-}" ]]; then
		local bundle
		for bundle in "${SSL_CERT_FILE:-}" "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${CURL_CA_BUNDLE:-}"; do
			if [[ -n "$bundle" && -f "$bundle" ]]; then
				export NODE_EXTRA_CA_CERTS=$bundle
				break
			fi
		done
	fi
	export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
	export npm_config_loglevel=${npm_config_loglevel:-error}
	export COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_ENABLE_AUTO_PIN=0
	# The build's NAT can lose one of the parallel A/AAAA answers glibc asks for on one
	# socket; a fresh socket for the second keeps corepack's lookups from EAI_AGAIN.
	export RES_OPTIONS="${RES_OPTIONS:-single-request-reopen}"
}
