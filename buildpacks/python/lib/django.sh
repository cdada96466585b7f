#!/usr/bin/env bash
# Usage: source lib/django.sh — Django support: collectstatic and the default web process.

# django::installed VENV — succeed when Django is installed in VENV.
django::installed() {
	compgen -G "$1/lib/python*/site-packages/django/__init__.py" >/dev/null
}

# django::project_name BUILD_DIR — print the Django project package (the one
# holding wsgi.py), read from DJANGO_SETTINGS_MODULE in manage.py; print
# nothing when it cannot be found.
django::project_name() {
	local build_dir=$1 module="" candidate line
	[[ -f "$build_dir/manage.py" ]] || return 0
	# Matches os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings").
	local pattern='DJANGO_SETTINGS_MODULE["'"'"'][[:space:]]*,[[:space:]]*["'"'"']([A-Za-z_][A-Za-z0-9_.]*)'
	while IFS= read -r line || [[ -n "$line" ]]; do
		if [[ "$line" =~ $pattern ]]; then
			module=${BASH_REMATCH[1]}
			break
		fi
	done <"$build_dir/manage.py"
	candidate=${module%%.*}
	if [[ -n "$candidate" && -f "$build_dir/$candidate/wsgi.py" ]]; then
		printf '%s\n' "$candidate"
		return 0
	fi
	# Fall back to the single top-level package that has a wsgi.py.
	local -a found=()
	for candidate in "$build_dir"/*/wsgi.py; do
		[[ -f "$candidate" ]] && found+=("$(basename -- "$(dirname -- "$candidate")")")
	done
	if ((${#found[@]} == 1)); then
		printf '%s\n' "${found[0]}"
	fi
	return 0
}

# django::collectstatic BUILD_DIR ENV_DIR VENV — run `manage.py collectstatic`
# like Heroku does. Config vars are exported to it (settings modules read
# SECRET_KEY and friends from the environment), in a subshell only.
django::collectstatic() {
	local build_dir=$1 env_dir=$2 venv=$3
	if config::is_true "$env_dir" DISABLE_COLLECTSTATIC; then
		output::step "Skipping Django collectstatic (DISABLE_COLLECTSTATIC is set)"
		return 0
	fi
	output::step "Running Django collectstatic"
	if ! (
		cd "$build_dir"
		config::export_all "$env_dir"
		export PYTHONUNBUFFERED=1
		unset PYTHONHOME PYTHONPATH
		"$venv/bin/python" manage.py collectstatic --noinput 2>&1 | output::indent
	); then
		output::fail "'python manage.py collectstatic --noinput' failed (its output is above)." \
			"" \
			"Django apps get their static files collected during the build. Things to check:" \
			"  1. settings.py sets STATIC_ROOT (e.g. BASE_DIR / 'staticfiles');" \
			"  2. settings that need config vars at build time get them: config vars" \
			"     are visible to collectstatic;" \
			"  3. the command works locally: python manage.py collectstatic --noinput" \
			"To skip this step, set the config var DISABLE_COLLECTSTATIC=1."
	fi
}
