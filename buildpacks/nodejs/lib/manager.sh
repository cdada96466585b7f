#!/usr/bin/env bash
# Usage: source lib/manager.sh — the package manager: chosen by the lockfile, run frozen.
# shellcheck disable=SC2034 # the MANAGER* globals are this file's output, read elsewhere
#
# package-lock.json (or npm-shrinkwrap.json) → npm ci; yarn.lock → yarn (classic:
# --frozen-lockfile; berry, when .yarnrc.yml exists or packageManager asks yarn@2+:
# --immutable); pnpm-lock.yaml → pnpm --frozen-lockfile; no lockfile → npm install (or
# the manager packageManager names). yarn and pnpm come from corepack, honouring
# packageManager, downloaded from the npm registry into CACHE_DIR.
#
# After manager::select: MANAGER (npm, yarn or pnpm), MANAGER_LOCK (the lockfile or
# empty), MANAGER_BERRY (1 for yarn 2+).

MANAGER=""
MANAGER_LOCK=""
MANAGER_BERRY=0
MANAGER_VERSION=""

# manager::of_lock LOCKFILE — the package manager a lockfile belongs to.
manager::of_lock() {
	case $1 in
	package-lock.json | npm-shrinkwrap.json) echo npm ;;
	yarn.lock) echo yarn ;;
	pnpm-lock.yaml) echo pnpm ;;
	esac
}

# manager::lockfiles BUILD_DIR — print each lockfile present, one per manager.
manager::lockfiles() {
	local build_dir=$1
	if [[ -f "$build_dir/npm-shrinkwrap.json" ]]; then
		echo npm-shrinkwrap.json
	elif [[ -f "$build_dir/package-lock.json" ]]; then
		echo package-lock.json
	fi
	[[ -f "$build_dir/yarn.lock" ]] && echo yarn.lock
	[[ -f "$build_dir/pnpm-lock.yaml" ]] && echo pnpm-lock.yaml
	return 0
}

# manager::too_many PACKAGE_MANAGER LOCKFILE... — fail, saying which lockfiles to delete.
manager::too_many() {
	local declared=$1 lock keep=""
	shift
	local -a lines=("Several lockfiles were found: $*; the build needs exactly one." "")
	for lock in "$@"; do
		[[ "$(manager::of_lock "$lock")" == "$declared" ]] && keep=$lock
	done
	if [[ -n "$keep" ]]; then
		lines+=("package.json's packageManager names $declared, so keep $keep and delete the rest:")
		for lock in "$@"; do
			[[ "$lock" == "$keep" ]] || lines+=("  git rm $lock")
		done
	else
		lines+=("Keep the lockfile of the package manager you use and delete the others:")
		for keep in "$@"; do
			local -a others=()
			for lock in "$@"; do
				[[ "$lock" == "$keep" ]] || others+=("$lock")
			done
			lines+=("  using $(manager::of_lock "$keep")? delete ${others[*]}: git rm ${others[*]}")
		done
	fi
	lines+=("then commit and push again.")
	output::fail "${lines[@]}"
}

# manager::select BUILD_DIR — set MANAGER, MANAGER_LOCK and MANAGER_BERRY.
manager::select() {
	local build_dir=$1 declared spec
	local -a locks=()
	mapfile -t locks < <(manager::lockfiles "$build_dir")
	spec=$PKG_MANAGER_SPEC
	declared=${spec%%@*}
	if ((${#locks[@]} > 1)); then
		manager::too_many "$declared" "${locks[@]}"
	fi
	if ((${#locks[@]} == 1)); then
		MANAGER_LOCK=${locks[0]}
		MANAGER=$(manager::of_lock "$MANAGER_LOCK")
		if [[ -n "$declared" && "$declared" != "$MANAGER" ]]; then
			output::fail "package.json's packageManager is $spec, but the lockfile is $MANAGER_LOCK." \
				"" \
				"To fix it, either set packageManager to the $MANAGER you use, or delete" \
				"$MANAGER_LOCK and commit the lockfile of $declared; then push again."
		fi
	else
		case $declared in
		yarn | pnpm) MANAGER=$declared ;;
		*) MANAGER=npm ;;
		esac
	fi
	if [[ "$MANAGER" == yarn ]]; then
		local major=${spec#yarn@}
		major=${major%%.*}
		if [[ -f "$build_dir/.yarnrc.yml" ]] || [[ "$spec" == yarn@* && "$major" =~ ^[0-9]+$ && "$major" -ge 2 ]]; then
			MANAGER_BERRY=1
		fi
	fi
}

# manager::prepare BUILD_DIR CACHE_DIR — put yarn/pnpm (through corepack) on PATH and
# point every manager's download cache into CACHE_DIR.
manager::prepare() {
	local build_dir=$1 cache_dir=$2
	export npm_config_cache="$cache_dir/nodejs/npm"
	export YARN_CACHE_FOLDER="$cache_dir/nodejs/yarn"
	export YARN_GLOBAL_FOLDER="$cache_dir/nodejs/yarn-berry"
	export npm_config_store_dir="$cache_dir/nodejs/pnpm-store"
	export YARN_ENABLE_TELEMETRY=0 YARN_ENABLE_GLOBAL_CACHE=1
	[[ "$MANAGER" == npm ]] && return 0
	# Inside the slug, so yarn/pnpm also run in dynos (`yarn start`) without a download.
	export COREPACK_HOME="$build_dir/.heroku/corepack"
	# Without packageManager: the version this corepack knows good (yarn 1.22), not latest.
	export COREPACK_DEFAULT_TO_LATEST=0
	# yarn 2+ from the npm registry (@yarnpkg/cli-dist) as yarn 1 and pnpm are: corepack's
	# default for it is repo.yarnpkg.com, which a build that reaches only the registry
	# (or its mirror) cannot fetch from.
	export COREPACK_NPM_REGISTRY=${COREPACK_NPM_REGISTRY:-${npm_config_registry:-${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}}}
	if [[ -d "$cache_dir/nodejs/corepack" && ! -e "$COREPACK_HOME" ]]; then
		cache::copy_tree "$cache_dir/nodejs/corepack" "$COREPACK_HOME"
	fi
	if ! command -v corepack >/dev/null; then
		output::fail "This app uses $MANAGER, which comes from corepack, but Node.js $NODE_VERSION has none." \
			"" \
			"To fix it, choose a Node.js that ships corepack (20, 22 or 24) in engines.node."
	fi
	corepack enable --install-directory "$build_dir/.heroku/bin" "$MANAGER"
	manager::fetch_tool "$build_dir"
	local version=$MANAGER_VERSION
	if [[ ! "$version" =~ ^[0-9]+\.[0-9]+ ]]; then
		output::fail "corepack could not get $MANAGER: $version" \
			"" \
			"Things to check:" \
			"  1. packageManager in package.json names a released version (e.g. pnpm@9.15.0);" \
			"  2. the build host reaches the npm registry (COREPACK_NPM_REGISTRY for a mirror)."
	fi
	output::detail "Using $MANAGER $version (through corepack)"
}

# manager::fetch_tool BUILD_DIR — have corepack download the manager (once; later builds
# find it in COREPACK_HOME); MANAGER_VERSION is then its version, or its last error.
# corepack does not retry, so a failed lookup or connection is tried again, up to
# MANAGER_FETCH_TRIES times.
MANAGER_FETCH_TRIES=4
manager::fetch_tool() {
	local build_dir=$1 try answer=""
	for ((try = 1; try <= MANAGER_FETCH_TRIES; try++)); do
		if answer=$(cd "$build_dir" && "$MANAGER" --version 2>&1); then
			break
		fi
		if [[ "$answer" == *"No compatible signature found"* && -z "${COREPACK_INTEGRITY_KEYS+set}" ]]; then
			# A registry mirror that drops npm's signatures: the tarball is still checked
			# against the integrity hash of the registry's metadata, as npm checks packages.
			output::warning "The npm registry serves no signatures for $MANAGER; corepack checks its" \
				"download against the registry's integrity hash only."
			export COREPACK_INTEGRITY_KEYS=""
		elif [[ "$answer" =~ EAI_AGAIN|ETIMEDOUT|ECONNRESET|ECONNREFUSED|ENOTFOUND|fetch\ failed ]]; then
			output::detail "corepack could not reach the registry (try $try of $MANAGER_FETCH_TRIES)"
			sleep "$try" # back off: the failure is the network's, not the app's
		else
			break
		fi
	done
	MANAGER_VERSION=$answer
}

# manager::save_tools CACHE_DIR — keep corepack's downloads for the next build.
manager::save_tools() {
	local cache_dir=$1
	[[ -n "${COREPACK_HOME:-}" && -d "$COREPACK_HOME" ]] || return 0
	rm -rf -- "$cache_dir/nodejs/corepack"
	cache::copy_tree "$COREPACK_HOME" "$cache_dir/nodejs/corepack"
}

# manager::install_argv — print the frozen install command, devDependencies included
# (the build needs them; they are pruned after it), one word a line.
manager::install_argv() {
	case $MANAGER in
	npm)
		if [[ -n "$MANAGER_LOCK" ]]; then printf '%s\n' npm ci; else printf '%s\n' npm install; fi
		echo --include=dev
		;;
	yarn)
		if ((MANAGER_BERRY)); then
			printf '%s\n' yarn install
			[[ -n "$MANAGER_LOCK" ]] && echo --immutable
		else
			printf '%s\n' yarn install --non-interactive --production=false
			[[ -n "$MANAGER_LOCK" ]] && echo --frozen-lockfile
		fi
		;;
	pnpm)
		printf '%s\n' pnpm install --prod=false
		[[ -n "$MANAGER_LOCK" ]] && echo --frozen-lockfile
		;;
	esac
	return 0
}

# manager::install BUILD_DIR — install the dependencies.
manager::install() {
	local build_dir=$1
	local -a argv=()
	mapfile -t argv < <(manager::install_argv)
	output::step "Installing dependencies with ${argv[*]}"
	if ! (cd "$build_dir" && "${argv[@]}" 2>&1 | output::indent); then
		output::fail "'${argv[*]}' failed (its output is above)." \
			"" \
			"Things to check:" \
			"  1. ${MANAGER_LOCK:-the lockfile} matches package.json: run '$MANAGER install'" \
			"     locally, commit the lockfile and push again;" \
			"  2. every dependency exists in the registry (a private one needs" \
			"     NPM_CONFIG_REGISTRY and its token as config vars)."
	fi
}

# manager::keeps_dev ENV_DIR — succeed when config vars ask to keep devDependencies
# (NPM_CONFIG_PRODUCTION=false, or YARN_PRODUCTION=false for yarn), as on Heroku.
manager::keeps_dev() {
	local env_dir=$1 key=NPM_CONFIG_PRODUCTION
	[[ "$MANAGER" == yarn ]] && key=YARN_PRODUCTION
	config::is_false "$(config::get "$env_dir" "$key")"
}

# manager::prune BUILD_DIR — remove devDependencies after the build, as Heroku does.
manager::prune() {
	local build_dir=$1
	local -a argv=()
	case $MANAGER in
	npm) argv=(npm prune --omit=dev) ;;
	yarn)
		if ((MANAGER_BERRY)); then
			argv=(yarn workspaces focus --all --production)
		else
			argv=(yarn install --non-interactive --production=true --ignore-scripts --prefer-offline)
			[[ -n "$MANAGER_LOCK" ]] && argv+=(--frozen-lockfile)
		fi
		;;
	pnpm) argv=(pnpm prune --prod) ;;
	esac
	output::step "Pruning devDependencies with ${argv[*]}"
	if ! (cd "$build_dir" && "${argv[@]}" 2>&1 | output::indent); then
		output::fail "'${argv[*]}' failed (its output is above)." \
			"" \
			"To keep devDependencies in the app instead, set the config var" \
			"NPM_CONFIG_PRODUCTION=false (npm, pnpm) or YARN_PRODUCTION=false (yarn)."
	fi
}

# manager::run_script BUILD_DIR NAME — run a package.json script with the manager.
manager::run_script() {
	local build_dir=$1 name=$2
	output::step "Running $name: $MANAGER run $name"
	if ! (cd "$build_dir" && "$MANAGER" run "$name" 2>&1 | output::indent); then
		output::fail "The $name script of package.json failed (its output is above)." \
			"" \
			"To fix it, make '$MANAGER run $name' pass locally, commit and push again."
	fi
}
