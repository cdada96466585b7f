#!/usr/bin/env bash
# Usage: source lib/profile.sh — write the app's .profile.d script.

# profile::write BUILD_DIR — write .profile.d/python.sh, sourced at dyno start
# with HOME set to the app directory. It only sets defaults: config vars,
# which are set before it runs, win.
profile::write() {
	local build_dir=$1
	mkdir -p -- "$build_dir/.profile.d"
	cat >"$build_dir/.profile.d/python.sh" <<'PROFILE'
# Usage: . "$HOME/.profile.d/python.sh" — written by the paas Python buildpack.
# Puts the app's virtualenv first on PATH and sets Python defaults.
export PATH="$HOME/.venv/bin:$PATH"
export VIRTUAL_ENV="$HOME/.venv"
unset PYTHONHOME
export PYTHONUNBUFFERED="${PYTHONUNBUFFERED:-1}"
export LANG="${LANG:-C.UTF-8}"
: "${WEB_CONCURRENCY:=2}"
export WEB_CONCURRENCY
: "${FORWARDED_ALLOW_IPS:=*}"
export FORWARDED_ALLOW_IPS
PROFILE
}
