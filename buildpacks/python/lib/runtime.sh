#!/usr/bin/env bash
# Usage: source lib/runtime.sh — choose the Python interpreter for the app.
# shellcheck disable=SC2034 # the RUNTIME_* globals are this file's output, read elsewhere
#
# The stack's interpreters are the `python3.X` executables on PATH; the
# buildpack never downloads one. The app may ask for a major.minor version in
# .python-version (e.g. "3.11" or "3.11.4") or runtime.txt ("python-3.11.4");
# a patch level is accepted but only major.minor is honoured. When the stack
# lacks it, the platform may offer one from its host-wide store in
# PAAS_MANAGED_PYTHON (a read-only directory holding bin/python3.X and lib/:
# a managed download, or another stack's interpreter whose libraries this
# stack has); runtime::install_managed copies it into the slug.
#
# After runtime::select, these globals are set:
#   RUNTIME_PYTHON   absolute path of the interpreter (symlinks resolved)
#   RUNTIME_MINOR    its major.minor, e.g. 3.11
#   RUNTIME_FULL     its full version, e.g. 3.11.2
#   RUNTIME_SOURCE   why it was chosen (".python-version", "runtime.txt", "default")

RUNTIME_PYTHON=""
RUNTIME_MINOR=""
RUNTIME_FULL=""
RUNTIME_SOURCE=""

# runtime::available — print "MAJOR.MINOR PATH" for each interpreter on PATH,
# oldest first, one per version (the first one on PATH wins). Directories
# that belong to a virtualenv (such as the one holding uv) are skipped: their
# interpreter is someone else's, not part of the stack.
runtime::available() {
	local dir candidate name real
	local -A seen=()
	local IFS=:
	for dir in $PATH; do
		[[ -n "$dir" && -d "$dir" && ! -f "$dir/../pyvenv.cfg" ]] || continue
		for candidate in "$dir"/python3.*; do
			name=${candidate##*/}
			[[ "$name" =~ ^python(3\.[0-9]+)$ && -x "$candidate" ]] || continue
			[[ -z "${seen[${BASH_REMATCH[1]}]:-}" ]] || continue
			real=$(readlink -f -- "$candidate") || continue
			seen[${BASH_REMATCH[1]}]=1
			printf '%s %s\n' "${BASH_REMATCH[1]}" "$real"
		done
	done | sort -V
}

# runtime::parse_request FILE KIND — print the major.minor asked for in FILE,
# or fail with a help message when the contents cannot be understood.
runtime::parse_request() {
	local file=$1 kind=$2 line="" raw=""
	while IFS= read -r line || [[ -n "$line" ]]; do
		line=${line%%#*}
		line=${line//[[:space:]]/}
		if [[ -n "$line" ]]; then
			raw=$line
			break
		fi
	done <"$file"
	local pattern='^3\.([0-9]+)(\.[0-9]+)?$'
	[[ "$kind" == runtime.txt ]] && pattern='^python-3\.([0-9]+)(\.[0-9]+)?$'
	if [[ "$raw" =~ $pattern ]]; then
		printf '3.%s\n' "${BASH_REMATCH[1]}"
		return 0
	fi
	local example='3.11'
	[[ "$kind" == runtime.txt ]] && example='python-3.11.4'
	output::fail "Cannot read the Python version in $kind: found '${raw:-<empty file>}'." \
		"" \
		"The file should hold a single version such as '$example'." \
		"To fix it, either:" \
		"  1. write a version such as '$example' into $kind, or" \
		"  2. delete $kind to use the newest Python on this stack."
}

# runtime::select BUILD_DIR — pick the interpreter and set the RUNTIME_* globals.
runtime::select() {
	local build_dir=$1 wanted="" source="default"
	if [[ -f "$build_dir/.python-version" ]]; then
		source=".python-version"
		wanted=$(runtime::parse_request "$build_dir/.python-version" .python-version)
		if [[ -f "$build_dir/runtime.txt" ]]; then
			output::warning "Both .python-version and runtime.txt exist; using .python-version." \
				"Delete runtime.txt to silence this warning."
		fi
	elif [[ -f "$build_dir/runtime.txt" ]]; then
		source="runtime.txt"
		wanted=$(runtime::parse_request "$build_dir/runtime.txt" runtime.txt)
	fi

	local available version path versions="" chosen_path=""
	available=$(runtime::available)
	while read -r version path; do
		[[ -n "$version" ]] || continue
		versions+="${versions:+, }$version"
		if [[ -z "$wanted" || "$version" == "$wanted" ]]; then
			RUNTIME_MINOR=$version
			chosen_path=$path
		fi
	done <<<"$available"

	if [[ -z "$versions" ]]; then
		output::fail "No Python interpreter (python3.X) was found on PATH." \
			"" \
			"PATH is: $PATH" \
			"This is a problem with the build host, not the app: install Python 3" \
			"on the stack (e.g. apt-get install python3 python3-venv) and retry."
	fi
	if [[ -z "$chosen_path" && -x "${PAAS_MANAGED_PYTHON:-}/bin/python$wanted" ]]; then
		chosen_path=$(runtime::install_managed "$PAAS_MANAGED_PYTHON" "$build_dir" "$wanted")
		RUNTIME_MINOR=$wanted
	fi
	if [[ -z "$chosen_path" ]]; then
		local other_stack
		other_stack=$(runtime::stack_with "$wanted")
		output::fail "Python $wanted was requested by $source, but this stack${STACK:+ ($STACK)} has: $versions" \
			"" \
			"No managed Python $wanted is in this host's store, and the platform's mirror" \
			"(PAAS_PYTHON_MIRROR or PAAS_PYTHON_DOWNLOADS_JSON, set by the operator) has none" \
			"or is not set. To fix it, either:" \
			"  1. change $source to one of: $versions, or" \
			"  2. delete $source to use the newest Python on this stack, or" \
			"  3. ask the operator for a mirror that has Python $wanted${other_stack:+, or}" \
			${other_stack:+"  4. move the app to stack $other_stack, which has Python $wanted: paas stack:set $other_stack"}
	fi
	RUNTIME_PYTHON=$chosen_path
	RUNTIME_SOURCE=$source
	RUNTIME_FULL=$("$RUNTIME_PYTHON" -c 'import platform; print(platform.python_version())')
}

# usage: runtime::stack_with MAJOR.MINOR — prints the stack named in PAAS_STACK_PYTHONS
# ("debian-12=3.11 debian-13=3.13", set by the platform) that has that Python, if any.
runtime::stack_with() {
	local wanted=$1 pair
	for pair in ${PAAS_STACK_PYTHONS:-}; do
		if [[ "${pair#*=}" == "$wanted" ]]; then
			echo "${pair%%=*}"
			return 0
		fi
	done
}

# usage: runtime::install_managed HOME BUILD_DIR MAJOR.MINOR — copies the platform's
# Python HOME (read-only, relocatable: bin/ and lib/) into BUILD_DIR/.heroku/python,
# where the slug carries it as on Heroku, and prints its interpreter's path. The one
# place that knows where an offered Python comes from and where it goes.
runtime::install_managed() {
	local home=$1 build_dir=$2 wanted=$3 target="$2/.heroku/python"
	if [[ -e "$target" || -L "$target" ]]; then
		output::warning "The app contains .heroku/python; it is replaced by the build."
		rm -rf -- "$target"
	fi
	mkdir -p -- "$build_dir/.heroku"
	# A copy, never links: the store is read-only and not in the slug. Modes, not owners.
	cp -R --preserve=mode,timestamps,links --no-dereference -- "$home" "$target"
	chmod -R u+w -- "$target"
	echo "$target/bin/python$wanted"
}

# usage: runtime::relocate_venv VENV — makes a virtualenv whose interpreter is inside
# the app (.heroku/python) work wherever the app is: at BUILD_DIR during the build, at
# /app in a dyno. Its python link becomes relative and pyvenv.cfg loses `home`, so the
# interpreter finds its prefix from its own location. A stack's interpreter (/usr/bin)
# is the same path in both places: nothing to do.
runtime::relocate_venv() {
	local venv=$1 app
	app=$(cd -- "$venv/.." && pwd -P)
	[[ "$RUNTIME_PYTHON" == "$app"/* ]] || return 0
	ln -sfn -- "../../${RUNTIME_PYTHON#"$app"/}" "$venv/bin/python"
	sed -i '/^home = /d' -- "$venv/pyvenv.cfg"
}
