#!/usr/bin/env bash
# Usage: source lib/detect.sh — decide whether a directory holds a Python app.

# Files any one of which marks a Python app.
DETECT_PYTHON_FILES=(
	requirements.txt pyproject.toml setup.py Pipfile uv.lock poetry.lock
	.python-version runtime.txt manage.py
)

# detect::is_python_app BUILD_DIR — succeed when BUILD_DIR holds a Python app.
detect::is_python_app() {
	local build_dir=$1 name
	for name in "${DETECT_PYTHON_FILES[@]}"; do
		[[ -f "$build_dir/$name" ]] && return 0
	done
	return 1
}
