"""Files in and out of govgis: one package for every path a file takes.

- ``readers``  one reader per format (GeoPackage, Shapefile plain or zipped, GeoJSON, CSV, DXF with
               one hole rule, the CGCS2000 coordinate TXT), for ``govgis import`` and red-line uploads
- ``validate`` rows checked against a layer's declaration, every problem with its row number
- ``copy``     COPY text and bulk loads into a layer's table (indexes kept, readers never blocked)
- ``imports``  the import: slices streamed through worker processes that die with the importer
- ``exports``  a layer written to a file, personal fields masked
- ``uploads``  limits on files from outside: streamed to disk, zips checked before extraction

Nothing here reads the settings by itself: callers pass the ``Settings`` (or the limits) they hold.
"""
