#!/usr/bin/env bash
# Usage: source lib/compile.sh — the steps of bin/compile, in order.
#
# Invariant: BUILD_DIR/.venv is either rebuilt from scratch by uv or restored
# from a cached venv built for the same fingerprint (same dependency files,
# same interpreter, same buildpack version): the app's own cache's, or the
# platform's shared one (lib/shared.sh); it is never patched in place.

# compile::abs_dir DIR — print DIR as an absolute path with symlinks resolved.
compile::abs_dir() {
	(cd -- "$1" && pwd -P)
}

# compile::prepare_uv CACHE_DIR BUILD_DIR — check uv and export its settings.
compile::prepare_uv() {
	local cache_dir=$1 build_dir=$2
	if ! command -v uv >/dev/null; then
		output::fail "uv was not found on PATH." \
			"" \
			"PATH is: $PATH" \
			"This is a problem with the build host, not the app: the platform must" \
			"put the directory holding the uv binary on PATH for buildpacks."
	fi
	mkdir -p -- "$cache_dir/uv"
	export UV_CACHE_DIR="$cache_dir/uv"
	UV_LINK_MODE=$(cache::link_mode "$cache_dir/uv" "$build_dir")
	export UV_LINK_MODE
	export UV_PYTHON_DOWNLOADS=never
	export UV_NO_PROGRESS=1
	export UV_COMPILE_BYTECODE=1
	# Nothing from the caller's shell may redirect the install elsewhere.
	unset VIRTUAL_ENV PYTHONHOME PYTHONPATH UV_PROJECT_ENVIRONMENT UV_SYSTEM_PYTHON UV_PYTHON
}

# compile::dependencies BUILD_DIR CACHE_DIR KIND WORK_DIR ENV_DIR — make BUILD_DIR/.venv.
compile::dependencies() {
	local build_dir=$1 cache_dir=$2 kind=$3 work=$4 env_dir=$5 fingerprint version
	local venv="$build_dir/.venv"
	version=$(<"$BUILDPACK_DIR/VERSION")
	fingerprint=$(deps::fingerprint "$build_dir" "$kind" "$version")

	if [[ "$kind" == requirements ]]; then
		output::step "Installing requirements with uv"
	else
		output::step "Installing dependencies from $(deps::describe "$kind") with uv"
	fi
	if [[ -e "$venv" || -L "$venv" ]]; then
		output::warning "The app contains a .venv directory; it is replaced by the build." \
			"Add .venv to .gitignore so it is not pushed."
		rm -rf -- "$venv"
	fi
	if cache::restore_venv "$cache_dir" "$fingerprint" "$venv"; then
		output::detail "Dependencies unchanged, reusing the cached environment"
		return 0
	fi
	# Not saved in the app's cache: the platform keeps it for the app's next builds.
	if shared::restore "$fingerprint" "$venv" "$env_dir"; then
		output::detail "Reusing the platform's shared environment for this requirements.txt (built from wheels)"
		return 0
	fi
	if [[ -z "$fingerprint" ]]; then
		output::detail "requirements.txt refers to local paths; the build cache is not used"
	fi
	if ! uv venv --quiet --relocatable --python "$RUNTIME_PYTHON" "$venv" 2>&1 | output::indent; then
		output::fail "Could not create the virtualenv with $RUNTIME_PYTHON (uv's error is above)." \
			"" \
			"This is a problem with the build host, not the app. Check that" \
			"$RUNTIME_PYTHON runs and that $build_dir is writable."
	fi
	runtime::relocate_venv "$venv"
	deps::install "$build_dir" "$kind" "$venv" "$work"
	cache::save_venv "$cache_dir" "$fingerprint" "$venv"
}

# compile::main BUILD_DIR CACHE_DIR [ENV_DIR] — the whole build.
compile::main() {
	if (($# < 2)); then
		output::fail "Usage: bin/compile BUILD_DIR CACHE_DIR [ENV_DIR]"
	fi
	local build_dir=$1 cache_dir=$2 env_dir=${3:-} kind work
	[[ -d "$build_dir" ]] || output::fail "BUILD_DIR '$build_dir' is not a directory."
	mkdir -p -- "$cache_dir" || output::fail "Cannot create CACHE_DIR '$cache_dir'."
	build_dir=$(compile::abs_dir "$build_dir")
	cache_dir=$(compile::abs_dir "$cache_dir")

	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf -- '$work'" EXIT

	config::export_index_settings "$env_dir"
	compile::prepare_uv "$cache_dir" "$build_dir"

	runtime::select "$build_dir"
	if [[ "$RUNTIME_SOURCE" == default ]]; then
		output::step "Using Python $RUNTIME_FULL (the newest on this stack)"
	else
		output::step "Using Python $RUNTIME_FULL (from $RUNTIME_SOURCE)"
	fi

	kind=$(deps::manager "$build_dir")
	deps::check "$build_dir" "$kind"
	compile::dependencies "$build_dir" "$cache_dir" "$kind" "$work" "$env_dir"

	if deps::is_package "$build_dir"; then
		output::step "Installing the app's own package"
		deps::install_project "$build_dir" "$build_dir/.venv"
	fi

	profile::write "$build_dir"

	if [[ -f "$build_dir/manage.py" ]] && django::installed "$build_dir/.venv"; then
		django::collectstatic "$build_dir" "$env_dir" "$build_dir/.venv"
	fi
}
