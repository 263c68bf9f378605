"""emergency layer family."""
