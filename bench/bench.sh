#!/bin/sh
# bench.sh - normal vs resident start-up time of perl and clang-format; see bench.py --help.
exec /usr/bin/python3.11 "$(dirname "$0")/bench.py" "$@"
