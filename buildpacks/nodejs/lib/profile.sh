#!/usr/bin/env bash
# Usage: source lib/profile.sh — write the app's .profile.d script.

# profile::write BUILD_DIR NODE_BIN — write .profile.d/nodejs.sh, sourced at dyno start
# with HOME set to the app directory. Config vars, set before it runs, win.
profile::write() {
	local build_dir=$1 node_bin=$2 node_path="\$HOME/.heroku/node/bin"
	[[ "$node_bin" == /usr/bin ]] && node_path=/usr/bin
	mkdir -p -- "$build_dir/.profile.d"
	cat >"$build_dir/.profile.d/nodejs.sh" <<PROFILE
# Usage: . "\$HOME/.profile.d/nodejs.sh" — written by the paas Node.js buildpack.
# Puts Node.js, yarn/pnpm and the app's node_modules/.bin on PATH.
export PATH="$node_path:\$HOME/.heroku/bin:\$HOME/node_modules/.bin:\$PATH"
export NODE_HOME="\$HOME/.heroku/node"
export NODE_ENV="\${NODE_ENV:-production}"
export COREPACK_HOME="\$HOME/.heroku/corepack"
export COREPACK_ENABLE_DOWNLOAD_PROMPT=0
export npm_config_update_notifier=false
export npm_config_cache="\${TMPDIR:-/tmp}/npm-cache"
PROFILE
}
