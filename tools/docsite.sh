#!/usr/bin/env bash
# The collection's docsite (`make docs`): tools/docsite.sh DOCS_VENV DEST
#   1. antsibull-docs lint-collection-docs --plugin-docs (docs/docsite/, every plugin's and role's docs)
#   2. antsibull-docs collection --use-current --fail-on-error: the RST of every plugin and role
#      and of docs/docsite's extra pages, with docs/preview/index.rst and ansible-references.rst
#   3. sphinx-build -W: HTML in DEST/html; any warning fails
# The collection is the checkout, through ANSIBLE_COLLECTIONS_PATH (the Makefile's .collections).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$(cd "$1" && pwd)
DEST=$2
export PATH=$VENV/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$ROOT/.collections}
unset ANSIBLE_CONFIG

cd "$ROOT"
antsibull-docs lint-collection-docs --plugin-docs .
rm -rf "$DEST"
mkdir -p "$DEST/rst"
chmod 700 "$DEST"
chmod og-w "$DEST/rst"  # antsibull-docs writes only into a folder no one else can write
antsibull-docs --config-file docs/preview/antsibull-docs.cfg collection --cleanup everything --fail-on-error \
    --use-current --dest-dir "$DEST/rst" nhs_cm.remediation
cp docs/preview/index.rst docs/preview/ansible-references.rst "$DEST/rst/"
sphinx-build -M html "$DEST/rst" "$DEST" -c docs/preview -W --keep-going -q
pages=$(find "$DEST/html/collections/nhs_cm/remediation" -name '*.html' | wc -l)
echo "docsite: $pages pages of nhs_cm.remediation in $DEST/html (open $DEST/html/index.html)"
