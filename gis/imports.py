"""Bulk import into any layer — moved to ``gis.io`` (readers, validate, copy, imports); these names
stay here for existing callers."""

from gis.io.copy import copy_frame, copy_text, load_rows
from gis.io.imports import ImportReport, import_file
from gis.io.readers import detect_dbf_encoding
from gis.io.validate import check_rows, importable_fields, validate

__all__ = ["ImportReport", "check_rows", "copy_frame", "copy_text", "detect_dbf_encoding", "import_file",
           "importable_fields", "load_rows", "validate"]
