"""The job spec: validation shared by the CLI and the sandbox, and the YAML/JSON loader."""
