"""emergency command module: incident workflow and areas, duplicates, assignments, the stock ledger,
road closures, the population grid; new columns on resources, stock, shelters, incidents and roads.

Explicit DDL (not create_all): what this revision does stays fixed whatever the models say later.
Columns on the 0005 tables are added with IF NOT EXISTS, so the revision also runs on a database whose
0005 tables were created from models that already have them.

Database rules that no write path can bypass:
* roads: cost and reverse_cost follow length, speed and one-way on every insert or edit (unless given),
  and new ends get pgRouting vertex ids (an end within 0.5 m of another road's end shares its vertex);
* incidents: every status change is timed in emergency_incident_status (with the actor a service sets
  in ``govgis.actor``); the pre-0007 spellings 'open'/'responding' become 'reported'/'dispatched';
* stock: the quantity changes only by a ledger entry; an entry that would make it negative is refused
  (the stock row is locked, so concurrent issues queue); a new stock line posts its opening entry;
  the ledger is append-only.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gis.schema import layer_version_trigger_sql, storage_srid

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATUSES = "('reported','dispatched','on_scene','under_control','closed')"
LAYER_TABLES = ("emergency_incident_areas", "emergency_road_closures", "emergency_population_cells")


def _geom(kind: str, name: str = "geom", nullable: bool = False) -> sa.Column:
    return sa.Column(name, Geometry(kind, srid=storage_srid(), spatial_index=False), nullable=nullable)


def _gist(table: str, column: str = "geom") -> None:
    op.execute(f"CREATE INDEX IF NOT EXISTS idx_{table}_{column} ON {table} USING gist ({column})")


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _feature() -> list[sa.Column]:
    return [sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False, server_default="1"),
            _now("created_at"), _now("updated_at")]


def _incident(nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column:
    return sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("emergency_incidents.id", ondelete=ondelete),
                     nullable=nullable)


COLUMNS = """
ALTER TABLE emergency_roads ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE emergency_roads ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE emergency_resources ADD COLUMN IF NOT EXISTS beds_total integer;
ALTER TABLE emergency_resources ADD COLUMN IF NOT EXISTS beds_available integer;
ALTER TABLE emergency_resources ADD COLUMN IF NOT EXISTS home_geom geometry(POINT, {srid});
CREATE INDEX IF NOT EXISTS idx_emergency_resources_home_geom ON emergency_resources USING gist (home_geom);
ALTER TABLE emergency_stock ADD COLUMN IF NOT EXISTS min_quantity numeric(14, 2);
ALTER TABLE emergency_shelters ADD COLUMN IF NOT EXISTS occupancy integer NOT NULL DEFAULT 0;
ALTER TABLE emergency_incidents ADD COLUMN IF NOT EXISTS type_code text;
ALTER TABLE emergency_incidents ADD COLUMN IF NOT EXISTS category text;
ALTER TABLE emergency_incidents ADD COLUMN IF NOT EXISTS merged_into bigint;
ALTER TABLE emergency_incidents ALTER COLUMN status SET DEFAULT 'reported';
ALTER TABLE emergency_incidents DROP CONSTRAINT IF EXISTS ck_emergency_incidents_status_known;
UPDATE emergency_incidents SET status = CASE status WHEN 'open' THEN 'reported' WHEN 'responding' THEN 'dispatched'
                                                    ELSE status END;
ALTER TABLE emergency_incidents ADD CONSTRAINT ck_emergency_incidents_status_known CHECK (status IN {statuses});
ALTER TABLE emergency_shelters DROP CONSTRAINT IF EXISTS ck_emergency_shelters_occupancy_range;
ALTER TABLE emergency_shelters ADD CONSTRAINT ck_emergency_shelters_occupancy_range CHECK (occupancy >= 0);
ALTER TABLE emergency_resources DROP CONSTRAINT IF EXISTS ck_emergency_resources_beds_range;
ALTER TABLE emergency_resources ADD CONSTRAINT ck_emergency_resources_beds_range
  CHECK (beds_available IS NULL OR (beds_available >= 0 AND (beds_total IS NULL OR beds_available <= beds_total)));
UPDATE emergency_resources SET home_geom = geom WHERE home_geom IS NULL;
"""

FUNCTIONS = """
CREATE OR REPLACE FUNCTION govgis_emergency_vertex_at(pt geometry, self_id bigint, floor_id bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE found bigint;
BEGIN
  SELECT CASE WHEN ST_DWithin(ST_StartPoint(r.geom), pt, 0.5) THEN r.source ELSE r.target END INTO found
    FROM emergency_roads r
   WHERE r.id IS DISTINCT FROM self_id AND r.geom && ST_Expand(pt, 0.5)
     AND (ST_DWithin(ST_StartPoint(r.geom), pt, 0.5) OR ST_DWithin(ST_EndPoint(r.geom), pt, 0.5))
   ORDER BY r.id LIMIT 1;
  IF found IS NOT NULL THEN RETURN found; END IF;
  -- a new vertex: numbered after every existing one (the lock keeps two inserts from sharing it)
  PERFORM pg_advisory_xact_lock(hashtext('govgis_emergency_road_vertices'));
  SELECT greatest(coalesce(max(greatest(source, target)), 0) + 1, floor_id) INTO found FROM emergency_roads;
  RETURN found;
END $$;

CREATE OR REPLACE FUNCTION govgis_emergency_road_costs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.cost IS NULL THEN NEW.cost := ST_Length(NEW.geom) / (NEW.speed_kmh / 3.6); END IF;
  ELSIF NEW.cost IS NULL OR ((NEW.geom IS DISTINCT FROM OLD.geom OR NEW.speed_kmh IS DISTINCT FROM OLD.speed_kmh
         OR NEW.oneway IS DISTINCT FROM OLD.oneway) AND NEW.cost IS NOT DISTINCT FROM OLD.cost) THEN
    NEW.cost := ST_Length(NEW.geom) / (NEW.speed_kmh / 3.6);
    IF NEW.reverse_cost IS NOT DISTINCT FROM OLD.reverse_cost THEN NEW.reverse_cost := NULL; END IF;
  END IF;
  IF NEW.reverse_cost IS NULL THEN
    NEW.reverse_cost := CASE WHEN NEW.oneway THEN -1 ELSE NEW.cost END;
  END IF;
  IF NEW.source IS NULL OR (TG_OP = 'UPDATE' AND NEW.source IS NOT DISTINCT FROM OLD.source
                            AND NOT ST_Equals(ST_StartPoint(NEW.geom), ST_StartPoint(OLD.geom))) THEN
    NEW.source := govgis_emergency_vertex_at(ST_StartPoint(NEW.geom), NEW.id, 0);
  END IF;
  IF NEW.target IS NULL OR (TG_OP = 'UPDATE' AND NEW.target IS NOT DISTINCT FROM OLD.target
                            AND NOT ST_Equals(ST_EndPoint(NEW.geom), ST_EndPoint(OLD.geom))) THEN
    NEW.target := govgis_emergency_vertex_at(ST_EndPoint(NEW.geom), NEW.id, NEW.source + 1);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER emergency_roads_costs BEFORE INSERT OR UPDATE ON emergency_roads
  FOR EACH ROW EXECUTE FUNCTION govgis_emergency_road_costs();

CREATE OR REPLACE FUNCTION govgis_emergency_incident_normalise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.status := CASE NEW.status WHEN 'open' THEN 'reported' WHEN 'responding' THEN 'dispatched'
                                ELSE NEW.status END;
  IF NEW.status = 'closed' AND NEW.closed_at IS NULL THEN NEW.closed_at := now(); END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER emergency_incidents_normalise BEFORE INSERT OR UPDATE ON emergency_incidents
  FOR EACH ROW EXECUTE FUNCTION govgis_emergency_incident_normalise();

CREATE OR REPLACE FUNCTION govgis_emergency_incident_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE who text := coalesce(nullif(current_setting('govgis.actor', true), ''), current_user);
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO emergency_incident_status (incident_id, status, at, actor)
      VALUES (NEW.id, 'reported', NEW.reported_at, who);
    IF NEW.status <> 'reported' THEN
      INSERT INTO emergency_incident_status (incident_id, status, at, actor)
        VALUES (NEW.id, NEW.status, greatest(now(), NEW.reported_at), who);
    END IF;
  ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
    INSERT INTO emergency_incident_status (incident_id, status, at, actor, note)
      VALUES (NEW.id, NEW.status, now(), who, nullif(current_setting('govgis.status_note', true), ''));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER emergency_incidents_history AFTER INSERT OR UPDATE OF status ON emergency_incidents
  FOR EACH ROW EXECUTE FUNCTION govgis_emergency_incident_history();

CREATE OR REPLACE FUNCTION govgis_emergency_stock_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.quantity IS DISTINCT FROM OLD.quantity AND pg_trigger_depth() < 2 THEN
    RAISE EXCEPTION 'the stock quantity changes only by a ledger entry (receipt, issue, adjustment)'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'stock_by_ledger';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER emergency_stock_guard BEFORE UPDATE ON emergency_stock
  FOR EACH ROW EXECUTE FUNCTION govgis_emergency_stock_guard();

CREATE OR REPLACE FUNCTION govgis_emergency_stock_opening() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO emergency_stock_ledger (stock_id, kind, quantity_change, balance_after, actor, note)
    VALUES (NEW.id, 'opening', NEW.quantity, NEW.quantity,
            coalesce(nullif(current_setting('govgis.actor', true), ''), current_user), '期初 opening balance');
  RETURN NULL;
END $$;
CREATE TRIGGER emergency_stock_opening AFTER INSERT ON emergency_stock
  FOR EACH ROW EXECUTE FUNCTION govgis_emergency_stock_opening();

CREATE OR REPLACE FUNCTION govgis_emergency_ledger_post() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE balance numeric;
BEGIN
  IF NEW.kind = 'opening' THEN
    IF pg_trigger_depth() < 2 THEN
      RAISE EXCEPTION 'opening entries are posted by govgis when a stock line is created'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'opening_by_stock';
    END IF;
    NEW.balance_after := NEW.quantity_change;
    RETURN NEW;
  END IF;
  -- the row lock serialises concurrent entries on one stock line
  SELECT quantity INTO balance FROM emergency_stock WHERE id = NEW.stock_id FOR UPDATE;
  IF balance + NEW.quantity_change < 0 THEN
    RAISE EXCEPTION 'stock % holds %, cannot take %', NEW.stock_id, balance, -NEW.quantity_change
      USING ERRCODE = 'check_violation', CONSTRAINT = 'stock_nonnegative';
  END IF;
  UPDATE emergency_stock SET quantity = quantity + NEW.quantity_change, version = version + 1
   WHERE id = NEW.stock_id RETURNING quantity INTO NEW.balance_after;
  RETURN NEW;
END $$;
CREATE TRIGGER emergency_ledger_post BEFORE INSERT ON emergency_stock_ledger
  FOR EACH ROW EXECUTE FUNCTION govgis_emergency_ledger_post();

CREATE OR REPLACE FUNCTION govgis_emergency_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- a cascade from a deleted stock line runs inside the foreign key's trigger (depth > 0)
  IF TG_OP = 'UPDATE' OR pg_trigger_depth() < 1 THEN
    RAISE EXCEPTION 'the stock ledger is append-only: post a correcting adjustment instead'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN OLD;
END $$;
CREATE TRIGGER emergency_ledger_append_only BEFORE UPDATE OR DELETE ON emergency_stock_ledger
  FOR EACH ROW EXECUTE FUNCTION govgis_emergency_ledger_append_only();
"""

# the stock lines that exist before this revision get their opening entries
BACKFILL = """
INSERT INTO emergency_stock_ledger (stock_id, kind, quantity_change, balance_after, actor, note)
SELECT id, 'opening', quantity, quantity, 'migration 0007', '期初 opening balance' FROM emergency_stock s
 WHERE NOT EXISTS (SELECT 1 FROM emergency_stock_ledger l WHERE l.stock_id = s.id);
"""


def upgrade() -> None:
    srid = storage_srid()
    op.execute(COLUMNS.format(srid=srid, statuses=STATUSES))
    op.create_table(
        "emergency_incident_status",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        _incident(),
        sa.Column("status", sa.Text, nullable=False),
        _now("at"),
        sa.Column("actor", sa.Text),
        sa.Column("note", sa.Text),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_emergency_incident_status_status_known"),
    )
    op.create_index("ix_emergency_incident_status_incident", "emergency_incident_status", ["incident_id"])
    op.create_table(
        "emergency_incident_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        _incident(),
        _now("at"),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("detail", JSONB),
    )
    op.create_index("ix_emergency_incident_log_incident", "emergency_incident_log", ["incident_id"])
    op.create_table(
        "emergency_incident_areas",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        _incident(),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.Column("actor", sa.Text),
        sa.Column("note", sa.Text),
        _geom("MULTIPOLYGON"),
        sa.CheckConstraint("kind IN ('incident','impact')", name="ck_emergency_incident_areas_kind_known"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from",
                           name="ck_emergency_incident_areas_valid_period"),
        sa.CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="ck_emergency_incident_areas_geom_valid"),
    )
    _gist("emergency_incident_areas")
    op.create_index("uq_emergency_incident_areas_current", "emergency_incident_areas", ["incident_id", "kind"],
                    unique=True, postgresql_where=sa.text("valid_to IS NULL"))
    op.create_table(
        "emergency_incident_duplicates",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        _incident(),
        sa.Column("candidate_id", sa.BigInteger, sa.ForeignKey("emergency_incidents.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("minutes_apart", sa.Float, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="flagged"),
        _now("flagged_at"),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("actor", sa.Text),
        sa.CheckConstraint("state IN ('flagged','merged','dismissed')",
                           name="ck_emergency_incident_duplicates_state_known"),
        sa.UniqueConstraint("incident_id", "candidate_id", name="uq_emergency_incident_duplicates_pair"),
    )
    op.create_table(
        "emergency_assignments",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        _incident(),
        sa.Column("resource_id", sa.BigInteger, sa.ForeignKey("emergency_resources.id", ondelete="CASCADE"),
                  nullable=False),
        _now("assigned_at"),
        sa.Column("travel_s", sa.Float),
        sa.Column("turnout_s", sa.Float),
        sa.Column("eta_at", sa.DateTime(timezone=True)),
        sa.Column("distance_m", sa.Float),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True)),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("actor", sa.Text),
        sa.CheckConstraint("method IN ('network','straight_line')", name="ck_emergency_assignments_method_known"),
    )
    op.create_index("ix_emergency_assignments_incident", "emergency_assignments", ["incident_id"])
    op.create_index("uq_emergency_assignments_open", "emergency_assignments", ["resource_id"], unique=True,
                    postgresql_where=sa.text("released_at IS NULL"))
    op.create_table(
        "emergency_stock_ledger",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("stock_id", sa.BigInteger, sa.ForeignKey("emergency_stock.id", ondelete="CASCADE"), nullable=False),
        _now("at"),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("quantity_change", sa.Numeric(14, 2), nullable=False),
        sa.Column("balance_after", sa.Numeric(14, 2), nullable=False),
        _incident(nullable=True, ondelete="SET NULL"),
        sa.Column("actor", sa.Text),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("kind IN ('opening','receipt','issue','adjustment')",
                           name="ck_emergency_stock_ledger_kind_known"),
        sa.CheckConstraint("balance_after >= 0", name="ck_emergency_stock_ledger_balance_nonnegative"),
        sa.CheckConstraint("kind <> 'issue' OR quantity_change < 0", name="ck_emergency_stock_ledger_issue_negative"),
        sa.CheckConstraint("kind <> 'receipt' OR quantity_change > 0",
                           name="ck_emergency_stock_ledger_receipt_positive"),
    )
    op.create_index("ix_emergency_stock_ledger_stock", "emergency_stock_ledger", ["stock_id"])
    op.create_table(
        "emergency_road_closures",
        *_feature(),
        sa.Column("reason", sa.Text, nullable=False),
        _now("starts_at"),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("edge_ids", ARRAY(sa.BigInteger)),
        _incident(nullable=True, ondelete="SET NULL"),
        sa.Column("actor", sa.Text),
        _geom("MULTIPOLYGON"),
        sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="ck_emergency_road_closures_window"),
        sa.CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="ck_emergency_road_closures_geom_valid"),
    )
    _gist("emergency_road_closures")
    op.create_table(
        "emergency_population_cells",
        *_feature(),
        sa.Column("cell_m", sa.Float, nullable=False),
        sa.Column("residential_area_m2", sa.Float, nullable=False),
        sa.Column("population", sa.Float, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        _geom("POLYGON"),
        sa.CheckConstraint("population >= 0", name="ck_emergency_population_cells_population_nonnegative"),
    )
    _gist("emergency_population_cells")
    op.execute(FUNCTIONS)
    op.execute(BACKFILL)
    for table in LAYER_TABLES:
        op.execute(layer_version_trigger_sql(table))


def downgrade() -> None:
    for table in LAYER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_version ON {table}")
    op.execute("""
DROP TRIGGER IF EXISTS emergency_ledger_append_only ON emergency_stock_ledger;
DROP TRIGGER IF EXISTS emergency_ledger_post ON emergency_stock_ledger;
DROP TRIGGER IF EXISTS emergency_stock_opening ON emergency_stock;
DROP TRIGGER IF EXISTS emergency_stock_guard ON emergency_stock;
DROP TRIGGER IF EXISTS emergency_incidents_history ON emergency_incidents;
DROP TRIGGER IF EXISTS emergency_incidents_normalise ON emergency_incidents;
DROP TRIGGER IF EXISTS emergency_roads_costs ON emergency_roads;
DROP FUNCTION IF EXISTS govgis_emergency_ledger_append_only();
DROP FUNCTION IF EXISTS govgis_emergency_ledger_post();
DROP FUNCTION IF EXISTS govgis_emergency_stock_opening();
DROP FUNCTION IF EXISTS govgis_emergency_stock_guard();
DROP FUNCTION IF EXISTS govgis_emergency_incident_history();
DROP FUNCTION IF EXISTS govgis_emergency_incident_normalise();
DROP FUNCTION IF EXISTS govgis_emergency_road_costs();
DROP FUNCTION IF EXISTS govgis_emergency_vertex_at(geometry, bigint, bigint);
""")
    for table in ("emergency_population_cells", "emergency_road_closures", "emergency_stock_ledger",
                  "emergency_assignments", "emergency_incident_duplicates", "emergency_incident_areas",
                  "emergency_incident_log", "emergency_incident_status"):
        op.drop_table(table)
    op.execute("""
ALTER TABLE emergency_incidents DROP CONSTRAINT IF EXISTS ck_emergency_incidents_status_known;
UPDATE emergency_incidents SET status = CASE status WHEN 'reported' THEN 'open' WHEN 'closed' THEN 'closed'
                                                    ELSE 'responding' END;
ALTER TABLE emergency_incidents ADD CONSTRAINT ck_emergency_incidents_status_known
  CHECK (status IN ('open','responding','closed'));
ALTER TABLE emergency_incidents ALTER COLUMN status SET DEFAULT 'open';
ALTER TABLE emergency_incidents DROP COLUMN IF EXISTS merged_into;
ALTER TABLE emergency_incidents DROP COLUMN IF EXISTS category;
ALTER TABLE emergency_incidents DROP COLUMN IF EXISTS type_code;
ALTER TABLE emergency_shelters DROP CONSTRAINT IF EXISTS ck_emergency_shelters_occupancy_range;
ALTER TABLE emergency_shelters DROP COLUMN IF EXISTS occupancy;
ALTER TABLE emergency_stock DROP COLUMN IF EXISTS min_quantity;
ALTER TABLE emergency_resources DROP CONSTRAINT IF EXISTS ck_emergency_resources_beds_range;
ALTER TABLE emergency_resources DROP COLUMN IF EXISTS home_geom;
ALTER TABLE emergency_resources DROP COLUMN IF EXISTS beds_available;
ALTER TABLE emergency_resources DROP COLUMN IF EXISTS beds_total;
ALTER TABLE emergency_roads DROP COLUMN IF EXISTS updated_at;
ALTER TABLE emergency_roads DROP COLUMN IF EXISTS created_at;
""")
