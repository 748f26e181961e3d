#!/usr/bin/env bash
# matrix.sh — the portability matrix alone: build dist/ once (./setup.sh --no-demo), make sure the
# chroots exist (chroots.sh, cached), run the tests of tests/Resident.Tests/Portability (every
# chroot) and OlderKernelTests (this machine's kernel answering as older ones). ./test.sh runs all
# of these too. Needs root.
#   tests/portability/matrix.sh [SUITE...]    default: every chroot
set -euo pipefail
cd "$(dirname "$0")/../.."
./setup.sh --no-demo
tests/portability/chroots.sh "$@"
filter="FullyQualifiedName~Resident.Tests.Portability.LibcSymbolTests|FullyQualifiedName~Resident.Tests.Portability.OlderKernelTests"
suites=("$@")
((${#suites[@]})) || suites=(bullseye bookworm trixie sid)
for s in "${suites[@]}"; do filter+="|FullyQualifiedName~Resident.Tests.Portability.${s^}."; done
exec dotnet test resident.slnx --nologo --filter "$filter"
