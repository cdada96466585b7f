#!/usr/bin/env bash
# Usage: source lib/detect.sh — decide whether a directory holds a Node.js app.

# detect::is_node_app BUILD_DIR — succeed when BUILD_DIR has a package.json.
detect::is_node_app() {
	[[ -f "$1/package.json" ]]
}
