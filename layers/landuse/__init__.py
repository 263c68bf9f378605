"""landuse layer family."""
