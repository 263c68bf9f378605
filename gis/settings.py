"""Settings for every govgis process, read once from the environment (prefix ``GOVGIS_``).

Each concern has its own small class; ``get_settings()`` validates them all at start-up so a bad
value stops the service with a message a person can act on, instead of failing on the first request.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# First SRID of the range PostGIS leaves to users; a city's local grid is registered under it.
CUSTOM_SRID_DEFAULT = 990001


class DatabaseSettings(BaseSettings):
    """Where the PostGIS database is. Empty URL means the project's own embedded cluster."""

    model_config = SettingsConfigDict(env_prefix="GOVGIS_", extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of an existing PostGIS; empty = the embedded cluster under .pgdata/",
    )
    owner_database_url: str = Field(
        default="",
        description="URL of the schema owner role: migrations, grants, bulk imports, backup/restore "
                    "(empty = the embedded cluster's govgis_owner, or GOVGIS_DATABASE_URL when only that is set)",
    )
    admin_database_url: str = Field(
        default="",
        description="URL of a role that may create the database and its extensions (`govgis db setup`, the "
                    "test harness); empty = the embedded cluster's superuser, or the owner's URL",
    )
    audit_role: str = Field(default="govgis_audit", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                            description="NOLOGIN role that owns audit_log (the app role is not a member)")
    read_database_url: str = Field(
        default="", description="Optional read-only replica URL; reads go there, writes to the primary."
    )
    replica_max_lag_seconds: float = Field(
        default=5.0, ge=0,
        description="Reads go to the primary while the replica's replay is further behind than this.",
    )
    read_your_writes_seconds: float = Field(
        default=60.0, ge=0,
        description="How long after a write a client (its key, or its govgis_lsn cookie) is served from the "
                    "primary unless the replica has replayed that write.",
    )
    replica_check_seconds: float = Field(default=1.0, gt=0, le=60,
                                         description="How often the replica's replay position is sampled.")
    statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="API statements running longer are cancelled (503). 0 = none."
    )
    lock_timeout_ms: int = Field(
        default=5_000, ge=0, description="API statements waiting longer for a lock are cancelled (503). 0 = none."
    )
    idle_in_transaction_timeout_ms: int = Field(
        default=60_000, ge=0, description="API sessions idle inside a transaction this long are ended. 0 = none."
    )
    pool_size: int = Field(default=8, ge=1, le=200)
    parallel_workers_per_query: int = Field(
        default=0, ge=0, le=64,
        description="PostgreSQL parallel workers one API query may start (max_parallel_workers_per_gather). "
                    "0: a service answering many small queries at once gains throughput and a shorter tail "
                    "without them; batch commands keep the server's default.",
    )

    @field_validator("database_url", "read_database_url", "owner_database_url", "admin_database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
            raise ValueError(
                "must be a PostgreSQL URL such as postgresql://user@host:5432/govgis "
                "(govgis needs PostGIS; other databases are not supported)"
            )
        return value.replace("postgres://", "postgresql://", 1)


class SpatialSettings(BaseSettings):
    """The city's coordinate system and extent."""

    model_config = SettingsConfigDict(env_prefix="GOVGIS_", extra="ignore")

    storage_crs: str = Field(
        default="EPSG:4548",
        description="CRS geometries are stored in: an EPSG code, or PROJ/WKT text for a local grid.",
    )
    storage_srid: int | None = Field(
        default=None,
        description="SRID to register a custom (PROJ/WKT) storage CRS under; derived for EPSG codes.",
    )
    # lon/lat (CGCS2000 ≈ WGS84 for this purpose) box every stored geometry must fall inside.
    city_bounds: tuple[float, float, float, float] = (117.85, 24.20, 118.55, 24.95)
    city_name: str = "厦门市"

    @field_validator("city_bounds", mode="before")
    @classmethod
    def _parse_bounds(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(" ", "").split(",") if p]
            if len(parts) != 4:
                raise ValueError("give four numbers: min_lon,min_lat,max_lon,max_lat")
            return tuple(float(p) for p in parts)
        return value

    @field_validator("city_bounds")
    @classmethod
    def _sane_bounds(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        min_lon, min_lat, max_lon, max_lat = value
        if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
            raise ValueError(
                f"{value} is not a lon/lat box: need -180 ≤ min_lon < max_lon ≤ 180 and "
                "-90 ≤ min_lat < max_lat ≤ 90, e.g. 117.85,24.20,118.55,24.95"
            )
        return value

    @model_validator(mode="after")
    def _resolve_srid(self) -> SpatialSettings:
        from gis.crs import parse_crs  # local: crs imports settings lazily too
        from gis.errors import UnknownCRS

        try:
            crs = parse_crs(self.storage_crs)
        except UnknownCRS as exc:  # pydantic reports ValueErrors only: say it as a settings problem
            raise ValueError(f"storage_crs: {exc.detail}") from None
        epsg = crs.to_epsg(min_confidence=100)
        if epsg is not None and self.storage_crs.strip().upper().startswith(("EPSG:", "URN:", "HTTP")):
            if self.storage_srid not in (None, epsg):
                raise ValueError(f"storage_srid {self.storage_srid} contradicts storage_crs EPSG:{epsg}")
            self.storage_srid = epsg
        elif self.storage_srid is None:
            self.storage_srid = CUSTOM_SRID_DEFAULT
        if not crs.is_projected:
            raise ValueError(
                f"storage_crs {self.storage_crs!r} is geographic; govgis stores geometries in a projected "
                "CRS so lengths and areas are metres (for Xiamen use EPSG:4548, CGCS2000 GK CM 117°E)"
            )
        return self


class ServiceSettings(BaseSettings):
    """The HTTP service and the limits it enforces on clients."""

    model_config = SettingsConfigDict(env_prefix="GOVGIS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_items: int = Field(default=10_000, ge=1, description="Largest page an items request returns.")
    default_items: int = Field(default=100, ge=1)
    max_request_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_upload_features: int = Field(default=2_000_000, ge=1)
    max_query_vertices: int = Field(default=100_000, ge=4, description="Vertices in a posted geometry.")
    rate_limit_per_minute: int = Field(default=600, ge=1, description="Data requests per key per minute.")
    tile_rate_limit_per_minute: int = Field(
        default=6000, ge=1, description="Map requests (tiles, basemap tiles, map assets) per key or per "
        "anonymous client address per minute, per API process.")
    anonymous_rate_limit_per_minute: int = Field(
        default=1000, ge=1, description="Data requests per anonymous client address per minute, per process "
        "(an OGC conformance run such as ogctests Features Core makes about 520).")
    failed_key_limit_per_minute: int = Field(
        default=30, ge=1, description="Refused (unknown/revoked) keys per client address per minute.")
    trusted_proxies: tuple[str, ...] = Field(
        default=(), description="Addresses/networks of reverse proxies whose X-Forwarded-For is believed.")
    external_basemap_url: str = Field(
        default="", description="Optional external raster tile URL (e.g. 天地图 with key). Off by default."
    )
    raster_basemap_dir: str = Field(
        default="", description="Folder of local GeoTIFF basemaps (RGB orthophoto, or a DEM drawn as hillshade)."
    )
    language: str = Field(default="zh", pattern="^(zh|en)$")
    retry_after_seconds: int = Field(
        default=5, ge=1, le=3600, description="Retry-After of a 503 when the database is away or too slow."
    )
    tile_cache_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0,
        description="Most memory the in-process vector tile cache holds (tiles and their keys); 0 = no cache.",
    )
    public_base_url: str = Field(
        default="", description="The address clients reach the service at (https://gis.city.gov.cn/govgis), "
        "used for absolute links; empty: http://HOST:PORT. Never taken from a request's Host header.")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    # --- what a person reads: the city's clock and the office named on printed maps ---
    time_zone: str = Field(
        default="Asia/Shanghai",
        description="IANA time zone every date and time a person reads is shown in (APIs keep ISO 8601 "
                    "with the offset).",
    )
    bureau_name: str = Field(
        default="厦门市自然资源和规划局", description="The office named on printed maps and documents."
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone: use a name such as Asia/Shanghai "
                             "(install tzdata if the system has none)") from None
        return value

    # --- uploads and imports (gis/io): limits on files from outside, and the import's lock wait -------
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024,
        description="Size of one uploaded file as sent (red line, INP); streamed to disk, refused beyond this.")
    max_upload_uncompressed_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="Total size of an uploaded zip's files once extracted.")
    max_zip_members: int = Field(default=100, ge=1, description="Entries in a zip (uploads and imports).")
    max_zip_ratio: float = Field(
        default=200.0, ge=2.0,
        description="Largest uncompressed ÷ compressed size of one zip member over 1 MiB (zip bombs reach 1000).")
    import_lock_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long an import waits for a lock on its layer before giving up.")

    @model_validator(mode="after")
    def _pages(self) -> ServiceSettings:
        if self.default_items > self.max_items:
            raise ValueError(f"default_items ({self.default_items}) exceeds max_items ({self.max_items})")
        return self


class PathSettings(BaseSettings):
    """Files the service reads at run time, outside the database."""

    model_config = SettingsConfigDict(env_prefix="GOVGIS_", extra="ignore")

    dem_path: Path = Field(
        default=PROJECT_ROOT / "data" / "generated" / "dem.tif",
        description="GeoTIFF digital elevation model (storage CRS or any CRS it declares) for pipe profiles; "
                    "`govgis db setup --demo` writes the demo city's here.",
    )
    rules_dir: Path = Field(
        default=PROJECT_ROOT / "data" / "rules",
        description="Folder of the city-editable rule tables (GB 50289 clearances, service lives, minimum "
                    "cover, repair frequency); default: the shipped data/rules.",
    )


# --- emergency module ---------------------------------------------------------------------------

class EmergencySettings(BaseSettings):
    """Dispatch, routing and coverage rules of the emergency module (prefix ``GOVGIS_EMERGENCY_``)."""

    model_config = SettingsConfigDict(env_prefix="GOVGIS_EMERGENCY_", extra="ignore")

    turnout_seconds: dict[str, float] = Field(
        default={"消防救援": 80.0, "医疗急救": 60.0},
        description="Turnout time (alert to wheels rolling) by capability type; NFPA 1710: 80 s fire, 60 s EMS. "
                    'JSON, e.g. {"消防救援": 80, "医疗急救": 60}.')
    turnout_default_seconds: float = Field(default=90.0, ge=0, description="Turnout of any other capability.")
    max_snap_m: float = Field(default=300.0, gt=0, description="A unit farther than this from every road is "
                              "off the network: its ETA is a labelled straight-line estimate.")
    straight_line_kmh: float = Field(default=25.0, gt=0, description="Speed of the straight-line fallback.")
    duplicate_distance_m: float = Field(default=300.0, ge=0, description="Incidents of one type this close …")
    duplicate_minutes: float = Field(default=30.0, ge=0, description="… and this close in time are flagged.")
    coverage_minutes: float = Field(default=5.0, gt=0, description="GB 51080-2015 §4.1.3: reach the district "
                                    "edge within 5 min of the dispatch order (turnout included).")
    isochrone_cell_m: float = Field(default=25.0, gt=0, description="Grid of isochrone/coverage polygons.")
    isochrone_buffer_m: float = Field(default=50.0, ge=0, description="Reached network buffered by this.")
    isochrone_hole_max_m2: float = Field(default=40_000.0, ge=0,
                                         description="Holes up to this (a block ringed by reached streets) are filled.")
    evacuation_hazard_factor: float = Field(default=10.0, ge=1, description="Evacuation routes pay this factor "
                                            "on roads inside the hazard, so they leave it by the shortest way.")
    population_per_hectare: dict[str, float] = Field(
        default={"0701": 300.0, "0702": 120.0},
        description="Estimated residents per hectare of residential land by GB/T 21010 code (urban 0701, rural "
                    "0702): the population grid is derived from the parcels with these.")
    population_cell_m: float = Field(default=100.0, gt=0, description="Cell of the population grid.")
    expiry_warning_days: int = Field(default=90, ge=0, description="Stock expiring within this is flagged.")


class Settings:
    """All settings, validated together."""

    def __init__(self) -> None:
        self.database = DatabaseSettings()
        self.spatial = SpatialSettings()
        self.service = ServiceSettings()
        self.paths = PathSettings()
        self.emergency = EmergencySettings()

    @property
    def storage_srid(self) -> int:
        assert self.spatial.storage_srid is not None  # resolved by the validator
        return self.spatial.storage_srid


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The validated settings; raises ConfigError naming the variable to fix."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "GOVGIS_" + "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else "GOVGIS_*"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid settings — " + "; ".join(problems)) from None
