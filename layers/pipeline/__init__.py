"""pipeline layer family."""
