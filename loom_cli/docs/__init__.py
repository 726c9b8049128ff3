"""Generated documentation: man pages and shell completion scripts.

`python -m loom_cli.docs` rewrites `man/` and `completions/` from the command
tree; `python -m loom_cli.docs --check` lists the files that are out of date.
Generating man pages needs docutils (in the `test` extra); loom itself never
imports this package.
"""
