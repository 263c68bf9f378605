"""Export of any layer to a file — moved to ``gis.io.exports``; these names stay here for existing callers."""

from gis.io.exports import ExportReport, export_layer, export_query, parse_bbox

__all__ = ["ExportReport", "export_layer", "export_query", "parse_bbox"]
