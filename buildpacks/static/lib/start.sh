#!/usr/bin/env bash
# Usage: .paas/static/start [--check] — serve the app's static site with nginx on $PORT, in
# the foreground, as the dyno's user; --check only tests the config (nginx -t).
# Copied into the slug by the static buildpack. nginx's pid file and temp files go to a
# fresh directory of the dyno's own (PAAS_STATIC_RUN, else under $TMPDIR or /tmp); its
# error log goes to stderr and its access log to stdout, i.e. the app's logs.
set -Eeuo pipefail
shopt -s inherit_errexit

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
app=${here%/.paas/static}
# What is substituted into the config must not be able to change its syntax.
safe='^/[A-Za-z0-9._/+-]*$'
if [[ ! "${PORT:-}" =~ ^[0-9]{1,5}$ ]]; then
	echo "static: PORT must be a port number, not '${PORT:-}'" >&2
	exit 1
fi
run=${PAAS_STATIC_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/nginx.XXXXXXXX")}
for path in "$app" "$run"; do
	if [[ ! "$path" =~ $safe ]]; then
		echo "static: cannot serve from '$path': use a path of letters, digits and / . _ + -" >&2
		exit 1
	fi
done
# Debian installs nginx in /usr/sbin, which a dyno's PATH does not hold.
nginx=$(PATH="/usr/sbin:/usr/local/sbin:$PATH" command -v nginx) || {
	echo "static: the stack has no nginx: rebuild it (paas stacks:build)" >&2
	exit 1
}
config=$(<"$here/nginx.conf.template")
config=${config//@PAAS_PORT@/$PORT}
config=${config//@PAAS_RUN@/$run}
config=${config//@PAAS_APP@/$app}
printf '%s\n' "$config" >"$run/nginx.conf"
if [[ "${1:-}" == --check ]]; then
	exec "$nginx" -t -q -e stderr -p "$run/" -c "$run/nginx.conf"
fi
exec "$nginx" -e stderr -p "$run/" -c "$run/nginx.conf"
