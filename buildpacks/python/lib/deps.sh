#!/usr/bin/env bash
# Usage: source lib/deps.sh — find the app's dependency files and install them with uv.
#
# One package manager file is used per app, in this order: uv.lock,
# poetry.lock, Pipfile.lock, requirements.txt, pyproject.toml, setup.py.
# Only the app's dependencies go into the (cached) virtualenv; an app that is
# itself a package (pyproject.toml with [build-system], or setup.py) is
# installed on top of it, non-editably, on every build, because its code
# changes with every push while the fingerprint only covers dependency files.

# deps::manager BUILD_DIR — print the kind of dependency files the app uses.
deps::manager() {
	local build_dir=$1
	if [[ -f "$build_dir/uv.lock" ]]; then
		echo uv
	elif [[ -f "$build_dir/poetry.lock" ]]; then
		echo poetry
	elif [[ -f "$build_dir/Pipfile.lock" ]]; then
		echo pipenv
	elif [[ -f "$build_dir/requirements.txt" ]]; then
		echo requirements
	elif [[ -f "$build_dir/Pipfile" ]]; then
		echo pipfile-unlocked
	elif [[ -f "$build_dir/pyproject.toml" ]]; then
		echo pyproject
	elif [[ -f "$build_dir/setup.py" ]]; then
		echo setup
	else
		echo none
	fi
}

# deps::describe KIND — the words used in the build output for KIND.
deps::describe() {
	case $1 in
	uv) echo "uv.lock" ;;
	poetry) echo "poetry.lock" ;;
	pipenv) echo "Pipfile.lock" ;;
	requirements) echo "requirements.txt" ;;
	pyproject) echo "pyproject.toml" ;;
	setup) echo "setup.py" ;;
	*) echo "$1" ;;
	esac
}

# deps::check BUILD_DIR KIND — fail with help when KIND cannot be built.
deps::check() {
	local build_dir=$1 kind=$2
	case $kind in
	none)
		output::fail "No Python dependency file was found in the app." \
			"" \
			"The app was detected as Python, but has none of: requirements.txt," \
			"pyproject.toml, setup.py, Pipfile.lock, poetry.lock, uv.lock." \
			"To fix it, add a requirements.txt listing the packages the app needs" \
			"(e.g. 'uv pip freeze > requirements.txt'), commit it and push again."
		;;
	pipfile-unlocked)
		output::fail "A Pipfile was found, but no Pipfile.lock." \
			"" \
			"Builds install the exact versions of a lock file. To fix it:" \
			"  1. run 'pipenv lock' in the app, then" \
			"  2. commit Pipfile.lock and push again."
		;;
	uv | poetry)
		if [[ ! -f "$build_dir/pyproject.toml" ]]; then
			output::fail "$(deps::describe "$kind") was found, but no pyproject.toml beside it." \
				"" \
				"The lock file only makes sense with the project it locks." \
				"To fix it, commit pyproject.toml together with $(deps::describe "$kind")."
		fi
		;;
	esac
}

# deps::requirement_files FILE — print FILE and every file it includes with
# -r/-c (recursively), one per line, each once.
deps::requirement_files() {
	local -a queue=("$1")
	local -A seen=()
	local file dir line ref
	while ((${#queue[@]})); do
		file=${queue[0]}
		queue=("${queue[@]:1}")
		[[ -f "$file" && -z "${seen[$file]:-}" ]] || continue
		seen[$file]=1
		printf '%s\n' "$file"
		dir=${file%/*}
		while IFS= read -r line || [[ -n "$line" ]]; do
			if [[ "$line" =~ ^[[:space:]]*(-r|-c|--requirement|--constraint)[[:space:]=]+([^[:space:]#]+) ]]; then
				ref=${BASH_REMATCH[2]}
				[[ "$ref" == /* ]] || ref="$dir/$ref"
				queue+=("$ref")
			fi
		done <"$file"
	done
}

# deps::has_local_references BUILD_DIR — succeed when requirements files point
# at local paths (-e ., ./lib, file:...), whose contents no fingerprint covers.
deps::has_local_references() {
	local build_dir=$1 file
	while IFS= read -r file; do
		if grep -qE '^[[:space:]]*(-e|--editable)[[:space:]]|^[[:space:]]*(\.|/|file:)|@[[:space:]]*file:' "$file"; then
			return 0
		fi
	done < <(deps::requirement_files "$build_dir/requirements.txt")
	return 1
}

# deps::input_files BUILD_DIR KIND — print the files whose contents decide
# the installed dependencies (existing files only).
deps::input_files() {
	local build_dir=$1 kind=$2 name
	local -a names=()
	case $kind in
	requirements)
		deps::requirement_files "$build_dir/requirements.txt"
		return 0
		;;
	uv) names=(pyproject.toml uv.lock uv.toml) ;;
	poetry) names=(pyproject.toml poetry.lock) ;;
	pipenv) names=(Pipfile.lock) ;;
	pyproject | setup) names=(pyproject.toml setup.py setup.cfg) ;;
	esac
	for name in "${names[@]}"; do
		[[ -f "$build_dir/$name" ]] && printf '%s\n' "$build_dir/$name"
	done
	return 0
}

# deps::fingerprint BUILD_DIR KIND BUILDPACK_VERSION — print a hash of
# everything that decides the contents of the dependency virtualenv, or
# nothing when the dependencies cannot be fingerprinted (local paths).
deps::fingerprint() {
	local build_dir=$1 kind=$2 version=$3 file
	# The interpreter's path relative to the app when it is the app's own (.heroku/python):
	# the build directory changes with every build.
	if [[ $kind == requirements ]] && deps::has_local_references "$build_dir"; then
		return 0
	fi
	{
		printf 'buildpack %s\npython %s %s\nkind %s\n' "$version" "$RUNTIME_FULL" "${RUNTIME_PYTHON#"$build_dir"/}" "$kind"
		while IFS= read -r file; do
			printf '\n== %s\n' "${file#"$build_dir"/}"
			cat -- "$file"
		done < <(deps::input_files "$build_dir" "$kind")
	} | sha256sum | cut -d' ' -f1
}

# deps::is_package BUILD_DIR — succeed when the app itself is an installable package.
deps::is_package() {
	local build_dir=$1
	[[ -f "$build_dir/setup.py" ]] ||
		{ [[ -f "$build_dir/pyproject.toml" ]] && grep -q '^\[build-system\]' "$build_dir/pyproject.toml"; }
}

# deps::uv ARGS... — run uv with the build's settings, output indented.
deps::uv() {
	uv "$@" 2>&1 | output::indent
}

# deps::install_failed KIND FILE — explain a failed install and exit.
deps::install_failed() {
	local kind=$1 file=$2
	output::fail "Could not install the dependencies from $file (uv's error is above)." \
		"" \
		"Things to check:" \
		"  1. every package name and version in $file exists on the package index" \
		"     (default index: ${UV_DEFAULT_INDEX:-${UV_INDEX_URL:-https://pypi.org/simple}});" \
		"  2. packages from a private index need its URL as a config var," \
		"     e.g. PIP_EXTRA_INDEX_URL or UV_INDEX;" \
		"  3. the same install works locally with Python $RUNTIME_MINOR:" \
		"     $(deps::local_command "$kind")"
}

# deps::local_command KIND — the command a user can run to reproduce an install.
deps::local_command() {
	case $1 in
	uv) echo "uv sync --locked --no-default-groups" ;;
	requirements) echo "uv pip install -r requirements.txt" ;;
	*) echo "uv pip install -r pyproject.toml" ;;
	esac
}

# deps::export_lock_script — Python that turns Pipfile.lock / poetry.lock into
# requirement lines (pipenv: what to install; poetry: version constraints).
deps::export_lock_script() {
	cat <<'PY'
import json, sys

kind, path = sys.argv[1], sys.argv[2]
if kind == "pipenv":
    with open(path, encoding="utf-8") as f:
        default = json.load(f).get("default", {})
    for name, spec in sorted(default.items()):
        extras = "[" + ",".join(spec["extras"]) + "]" if spec.get("extras") else ""
        marker = "; " + spec["markers"] if spec.get("markers") else ""
        if "version" in spec:
            print(f"{name}{extras}{spec['version']}{marker}")
        elif "git" in spec:
            ref = "@" + spec["ref"] if spec.get("ref") else ""
            print(f"{name}{extras} @ git+{spec['git']}{ref}{marker}")
        elif "file" in spec:
            print(f"{name}{extras} @ {spec['file']}{marker}")
        else:
            sys.exit(f"Pipfile.lock entry {name!r} has no version, git or file source")
else:
    import tomllib
    with open(path, "rb") as f:
        lock = tomllib.load(f)
    for package in lock.get("package", []):
        source = package.get("source", {}).get("type")
        if source in (None, "legacy"):
            print(f"{package['name']}=={package['version']}")
PY
}

# deps::install BUILD_DIR KIND VENV WORK_DIR — install the app's dependencies
# into VENV; WORK_DIR is a scratch directory for exported lock files.
deps::install() {
	local build_dir=$1 kind=$2 venv=$3 work=$4
	local python="$venv/bin/python"
	case $kind in
	requirements)
		(cd "$build_dir" && deps::uv pip install --python "$python" -r requirements.txt) ||
			deps::install_failed "$kind" requirements.txt
		;;
	pyproject | setup)
		local file=pyproject.toml
		[[ $kind == setup ]] && file=setup.py
		(cd "$build_dir" && deps::uv pip install --python "$python" -r "$file") ||
			deps::install_failed "$kind" "$file"
		;;
	pipenv)
		"$RUNTIME_PYTHON" -c "$(deps::export_lock_script)" pipenv "$build_dir/Pipfile.lock" >"$work/requirements.txt" ||
			output::fail "Could not read Pipfile.lock (the error is above)." \
				"" \
				"To fix it, run 'pipenv lock' with a current pipenv, commit Pipfile.lock and push again."
		(cd "$build_dir" && deps::uv pip install --python "$python" -r "$work/requirements.txt") ||
			deps::install_failed "$kind" Pipfile.lock
		;;
	poetry)
		"$RUNTIME_PYTHON" -c "$(deps::export_lock_script)" poetry "$build_dir/poetry.lock" >"$work/constraints.txt" ||
			output::fail "Could not read poetry.lock (the error is above)." \
				"" \
				"To fix it, run 'poetry lock' with a current Poetry, commit poetry.lock and push again."
		(cd "$build_dir" && deps::uv pip install --python "$python" -r pyproject.toml -c "$work/constraints.txt") ||
			deps::install_failed "$kind" "pyproject.toml and poetry.lock"
		;;
	uv)
		if ! (cd "$build_dir" && export UV_PROJECT_ENVIRONMENT="$venv" && deps::uv sync --locked \
			--no-default-groups --no-install-project --python "$python"); then
			output::fail "Could not install the dependencies from uv.lock (uv's error is above)." \
				"" \
				"Things to check:" \
				"  1. uv.lock matches pyproject.toml: run 'uv lock', commit uv.lock, push again;" \
				"  2. the project supports Python $RUNTIME_MINOR (requires-python in pyproject.toml);" \
				"  3. packages from a private index need its URL as a config var, e.g. UV_INDEX."
		fi
		;;
	esac
	deps::relativize_pth "$build_dir" "$venv"
}

# deps::install_project BUILD_DIR VENV — install the app's own package
# (without dependencies, non-editable) so its entry points exist.
deps::install_project() {
	local build_dir=$1 venv=$2
	(cd "$build_dir" && deps::uv pip install --python "$venv/bin/python" --no-deps --reinstall .) ||
		output::fail "Could not build and install the app's own package (the error is above)." \
			"" \
			"The app has a [build-system] in pyproject.toml or a setup.py, so it is" \
			"installed as a package. Things to check:" \
			"  1. 'uv build' works in the app's directory;" \
			"  2. if the app is not meant to be a package, remove [build-system]" \
			"     (and setup.py) and list its dependencies in requirements.txt."
}

# deps::relativize_pth BUILD_DIR VENV — rewrite absolute paths into the build
# directory in .pth files (editable installs) as paths relative to
# site-packages, which Python accepts, so the app can be moved after the build.
deps::relativize_pth() {
	local build_dir=$1 venv=$2 pth site line
	for pth in "$venv"/lib/python*/site-packages/*.pth; do
		[[ -f "$pth" ]] || continue
		grep -qF -- "$build_dir" "$pth" || continue
		site=${pth%/*}
		while IFS= read -r line || [[ -n "$line" ]]; do
			if [[ "$line" == "$build_dir"* && "$line" != import* ]]; then
				realpath -m --relative-to="$site" -- "$line"
			else
				printf '%s\n' "$line"
			fi
		done <"$pth" >"$pth.new"
		mv -- "$pth.new" "$pth"
		if grep -qF -- "$build_dir" "$pth"; then
			output::warning "${pth##*/} refers to the build directory; the editable install" \
				"may not work once the app is moved. Prefer non-editable requirements."
		fi
	done
}
