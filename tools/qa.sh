#!/usr/bin/env bash
# The collection's quality gates (docs/quality.md). The Makefile calls one step at a time:
#   tools/qa.sh get-pip       write the offline get-pip stand-in that ansible-test needs
#   tools/qa.sh build         ansible-galaxy collection build into build/, and unpack the tarball
#                             at build/ansible_collections/nhs_cm/remediation (ansible-test runs
#                             there: it refuses the symlinked .collections path)
#   tools/qa.sh sanity        ansible-test sanity --python 3.11 --venv, minus tests/sanity/skip.txt
#   tools/qa.sh units         ansible-test units --python 3.11 --venv over tests/unit
#   tools/qa.sh ansible-lint  ansible-lint --profile production on playbooks/ and roles/
#   tools/qa.sh importer      galaxy-importer on the tarball, no containers; fails on any WARNING
#   tools/qa.sh docs          ansible-doc renders every module and every role of the tarball
# The tools come from .venv-qa (requirements-qa.txt, `make qa-install`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QA_VENV=${QA_VENV:-$ROOT/.venv-qa}
PYTHON_VERSION=3.11
BUILD=$ROOT/build
TREE=$BUILD/ansible_collections/nhs_cm/remediation
COLLECTION=nhs_cm.remediation
export PATH=$QA_VENV/bin:$PATH
if [ -n "${CI:-}" ]; then
    export NO_COLOR=1  # plain CI logs (ansible-lint colours even when piped)
fi
# ansible-test and ansible-doc below read the unpacked tarball, never the checkout's ansible.cfg
# nor its .collections link (which the Makefile exports for its own ansible runs).
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH
# ansible-test runs with ANSIBLE_TEST_CONTENT_ROOT=$TREE: without it, it walks up from build/ to
# the checkout's .git and tests only the files git tracks there (none: build/ is ignored), and
# "All targets skipped" passes. With it, it takes every file of the unpacked tarball.

die() {
    echo "qa: $*" >&2
    exit 1
}

tarball() {
    local found=("$BUILD"/nhs_cm-remediation-*.tar.gz)
    [ -f "${found[0]}" ] || die "no tarball in $BUILD: run 'make build' first"
    [ "${#found[@]}" -eq 1 ] || die "more than one tarball in $BUILD: ${found[*]}"
    echo "${found[0]}"
}

need_tree() {
    [ -f "$TREE/MANIFEST.json" ] || die "$TREE is missing: run 'make build' first"
}

get_pip() {
    local version
    version=$(python -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$PYTHON_VERSION"'"))["pip"])')
    local target="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
    mkdir -p "$(dirname "$target")"
    cp "$ROOT/tools/ansible_test_get_pip.py" "$target"
    echo "qa: ansible-test's pip $version bootstrap -> $target (offline stand-in)"
}

build() {
    # Keep ansible-test's work tree (tests/output: its delegation venv) across rebuilds.
    local keep=$BUILD/.tests-output
    rm -rf "$keep"
    if [ -d "$TREE/tests/output" ]; then
        mv "$TREE/tests/output" "$keep"
    fi
    rm -rf "$BUILD/ansible_collections" "$BUILD"/nhs_cm-remediation-*.tar.gz
    ansible-galaxy collection build --force --output-path "$BUILD" "$ROOT"
    mkdir -p "$TREE"
    tar -xzf "$(tarball)" -C "$TREE"
    if [ -d "$keep" ]; then
        mkdir -p "$TREE/tests"
        mv "$keep" "$TREE/tests/output"
    fi
    echo "qa: unpacked $(tar -tzf "$(tarball)" | grep -vc '/$') files at $TREE"
}

skipped_sanity_tests() {
    sed -e 's/#.*//' "$ROOT/tests/sanity/skip.txt" | awk 'NF { print $1 }'
}

sanity() {
    need_tree
    local args=()
    local name
    for name in $(skipped_sanity_tests); do
        args+=(--skip-test "$name")
    done
    echo "qa: skipping ${args[*]:-nothing} (reasons: tests/sanity/skip.txt)"
    cd "$TREE"
    ANSIBLE_TEST_CONTENT_ROOT=$TREE ansible-test sanity --python "$PYTHON_VERSION" --venv --color no "${args[@]}"
}

units() {
    need_tree
    [ -d "$TREE/tests/unit" ] || die "the tarball has no tests/unit (galaxy.yml build_ignore?)"
    cd "$TREE"
    ANSIBLE_TEST_CONTENT_ROOT=$TREE ansible-test units --python "$PYTHON_VERSION" --venv --color no --requirements
}

ansible_lint() {
    local targets=()
    local dir
    for dir in playbooks roles; do
        if [ -d "$ROOT/$dir" ]; then
            targets+=("$dir")
        fi
    done
    [ "${#targets[@]}" -gt 0 ] || die "neither playbooks/ nor roles/ exists"
    cd "$ROOT"
    # nhs_cm.remediation resolves through the checkout's .collections link (make install).
    ANSIBLE_CONFIG=$ROOT/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$ROOT/.collections \
        ansible-lint --profile production --strict "${targets[@]}"
}

importer() {
    local file
    file=$(tarball)
    local log=$BUILD/importer.log
    cd "$BUILD"
    GALAXY_IMPORTER_CONFIG=$ROOT/tools/galaxy-importer.cfg python -m galaxy_importer.main "$file" | tee "$log"
    # The importer passes a collection with warnings (Galaxy shows them to users): not here.
    if grep -E '^(WARNING|ERROR)' "$log" >/dev/null; then
        die "galaxy-importer reported the WARNING/ERROR lines above (full output: $log)"
    fi
    grep -q '^Importer processing completed successfully' "$log" || die "galaxy-importer did not complete"
}

# Names of the plugins of one type that ansible-doc lists for the collection.
doc_list() {
    ansible-doc -t "$1" -l "$COLLECTION" --json | python -c 'import json, sys
print("\n".join(sorted(json.load(sys.stdin))))'
}

# Renders one plugin's or role's documentation; fails on an error, a warning or no text at all
# (ansible-doc prints nothing for a role without meta/argument_specs.yml).
render() {
    local kind=$1 name=$2
    local out err status=0
    out=$(mktemp)
    err=$(mktemp)
    ansible-doc -t "$kind" "$name" >"$out" 2>"$err" || status=$?
    local lines
    lines=$(wc -l <"$out")
    cat "$err" >&2
    rm -f "$out" "$err"
    [ "$status" -eq 0 ] || die "ansible-doc -t $kind $name failed (exit $status)"
    [ "$lines" -gt 0 ] || die "ansible-doc -t $kind $name printed no documentation" \
        "(a role needs meta/argument_specs.yml, a module DOCUMENTATION)"
    echo "qa: ansible-doc -t $kind $name: $lines lines"
}

docs() {
    need_tree
    export ANSIBLE_COLLECTIONS_PATH=$BUILD
    local expected listed name
    expected=$(find "$TREE/plugins/modules" -maxdepth 1 -name '*.py' ! -name '__init__.py' -printf '%f\n' 2>/dev/null |
        sed -e 's/\.py$//' -e "s/^/$COLLECTION./" | sort)
    listed=$(doc_list module)
    [ "$expected" = "$listed" ] || die "ansible-doc -l lists modules [$listed], plugins/modules has [$expected]"
    [ -n "$listed" ] || die "the collection has no module"
    for name in $listed; do
        render module "$name"
    done
    expected=$(find "$TREE/roles" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null |
        sed -e "s/^/$COLLECTION./" | sort)
    listed=$(doc_list role)
    [ "$expected" = "$listed" ] || die "ansible-doc -t role -l lists [$listed], roles/ has [$expected]"
    for name in $listed; do
        render role "$name"
    done
    [ -n "$listed" ] || echo "qa: no roles yet"
}

case "${1:-}" in
    get-pip) get_pip ;;
    build) build ;;
    sanity) sanity ;;
    units) units ;;
    ansible-lint) ansible_lint ;;
    importer) importer ;;
    docs) docs ;;
    *) die "usage: $0 get-pip|build|sanity|units|ansible-lint|importer|docs" ;;
esac
