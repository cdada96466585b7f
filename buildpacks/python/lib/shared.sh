#!/usr/bin/env bash
# Usage: source lib/shared.sh — the platform's shared dependency cache.
#
# The platform keeps one virtualenv per exact requirements.txt (and stack, buildpack
# version, host index settings), shared by every app that pushes the same file. It is
# made by bin/prime in a step of its own, as the platform's account, from wheels only:
# no setup.py or build hook runs, and the bytecode is compiled with the stack's
# interpreter under -I -S, so no .pth file of a package runs either. An app's build
# only reads it: PAAS_SHARED_VENV names a read-only entry holding venv/ and the
# fingerprint it was built for (deps::fingerprint, as the app's own build computes it).

# shared::restore FINGERPRINT VENV ENV_DIR — copy the platform's shared venv to VENV
# when it was built for FINGERPRINT and the app sets no index of its own; fail
# (status 1) otherwise.
shared::restore() {
	local fingerprint=$1 venv=$2 env_dir=$3 entry=${PAAS_SHARED_VENV:-} stored="" key
	[[ -n "$fingerprint" && -n "$entry" && -d "$entry/venv" && -f "$entry/fingerprint" ]] || return 1
	for key in "${CONFIG_INDEX_VARS[@]}"; do
		[[ -z "$env_dir" || ! -e "$env_dir/$key" ]] || return 1
	done
	stored=$(<"$entry/fingerprint")
	[[ "$stored" == "$fingerprint" ]] || return 1
	# A copy, never links: the entry is another filesystem, and read-only.
	cp -a -- "$entry/venv" "$venv"
}

# shared::compile_bytecode VENV — byte-compile VENV's site-packages like uv does,
# but with the stack's interpreter in isolated mode without the site module, so no
# .pth file of an installed package runs. A file that does not compile (a template,
# Python 2 code) is skipped, as uv skips it.
shared::compile_bytecode() {
	local venv=$1 site
	for site in "$venv"/lib/python*/site-packages; do
		[[ -d "$site" ]] || continue
		"$RUNTIME_PYTHON" -I -S -m compileall -q -q -j 0 -- "$site" || :
	done
}

# shared::prime DIR — build DIR/venv for DIR/app/requirements.txt from wheels only
# and write its fingerprint to DIR/fingerprint (last: its presence says done).
shared::prime() {
	local dir=$1 app version fingerprint venv
	app=$(compile::abs_dir "$dir/app")
	venv="$dir/venv"
	[[ -f "$app/requirements.txt" ]] || output::fail "bin/prime: $app/requirements.txt is missing."
	rm -f -- "$dir/fingerprint"
	mkdir -p -- "$dir/cache"
	config::export_index_settings ""
	compile::prepare_uv "$dir/cache" "$app"
	# Bytecode is compiled by shared::compile_bytecode, not by uv (which runs .pth files);
	# no uv.toml or pyproject.toml is read.
	unset UV_COMPILE_BYTECODE
	export UV_NO_CONFIG=1
	runtime::select "$app"
	version=$(<"$BUILDPACK_DIR/VERSION")
	fingerprint=$(deps::fingerprint "$app" requirements "$version")
	[[ -n "$fingerprint" ]] || output::fail "bin/prime: requirements.txt refers to local paths."
	output::step "Installing requirements with uv (wheels only, shared by apps with the same requirements.txt)"
	uv venv --quiet --relocatable --python "$RUNTIME_PYTHON" "$venv" 2>&1 | output::indent
	# Wheels only: an sdist would run its build backend (setup.py), even just to resolve.
	(cd "$app" && deps::uv pip install --only-binary :all: --python "$venv/bin/python" -r requirements.txt) ||
		output::fail "bin/prime: uv could not install requirements.txt from wheels."
	shared::compile_bytecode "$venv"
	printf '%s\n' "$fingerprint" >"$dir/fingerprint"
}
