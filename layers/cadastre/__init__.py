"""cadastre layer family."""
