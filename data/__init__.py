"""Shipped data: the demo-city generator (``data.democity``) and reference code lists (``data.codes``)."""
