# Sphinx configuration of the collection's docsite, built by `make docs` (docs/quality.md).
# Started from `antsibull-docs sphinx-init --use-current nhs_cm.remediation` (antsibull-docs
# 2.28.0). One change: no intersphinx inventories, because CI reaches only package registries.
# References into Ansible's own documentation resolve to ansible-references.rst beside this file,
# which links to it. `-W`: every Sphinx warning fails the build.

project = "nhs_cm.remediation"
copyright = "NHS CM remediation maintainers"
title = "nhs_cm.remediation"
html_short_title = "nhs_cm.remediation"

extensions = ["sphinx_antsibull_ext"]

pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = "any"
nitpicky = True
