"""Cadastre layers in the registry."""

from gis.registry import REGISTRY, Access, Layer, WriteMode
from layers.cadastre.models import parcels

PARCELS = REGISTRY.add(
    Layer(
        id="cadastre_parcels",
        title_zh="宗地",
        title_en="Cadastral parcels",
        table=parcels,
        family="cadastre",
        department="不动产登记中心",
        access=Access.PUBLIC,
        searchable=("parcel_code", "unit_code", "right_holder", "address"),
        personal=("holder_id_number", "holder_phone"),
        # a natural person's name is personal data; an organisation's is public record
        personal_when={"right_holder": ("holder_kind", ("person",))},
        # parcels change only by registrations, which keep the GB/T 37346 code rules, the no-overlap
        # rule, lineage and the registration record
        write_mode=WriteMode.MODULE,
        write_via="POST /land/registrations/{initial,change,transfer,split,merge,boundary-adjustment,cancellation}",
        map_fields=("parcel_code", "landuse_code", "right_type", "status"),
        read_only=("id", "version", "created_at", "updated_at", "plane_area"),
        required=("parcel_code", "unit_code", "right_holder", "right_type", "landuse_code", "district"),
        valid_time=("valid_from", "valid_to"),
        record_time=("recorded_from", "recorded_to"),
        style={"kind": "fill", "color": "#b07d48", "fill": "landuse_code", "min_zoom": 14},
        description="宗地现状与历史（双时态：法定有效时间与登簿时间）",
    )
)
