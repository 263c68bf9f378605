"""The offline web map: a folium (Leaflet) page, its vendored front-end packages and its JS tools.

The map talks to the API over HTTP only; nothing in this package queries the database.
"""
