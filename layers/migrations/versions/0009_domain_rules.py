"""Domain rules on the edges: parcel attachments and retired versions, survey-year completeness,
directed supply elements and INP lengths in pipeline networks, per-network graph versions.

* cadastre_parcels.attachment_geom: where the attachment a unit code names lies (a split gives it to
  the child that contains it); versions with an end get status 'retired'.
* landuse_survey_years: one row per loaded survey year, complete or partial (declared when loaded, or
  derived from its coverage), with its covered area.
* pipeline_pipes.link_state (open / closed / check: a check valve passes flow from from_node to
  to_node only), recorded_length_m (the length a network file records), source_link and valve_stub
  (the INP link a piece was cut from; the short piece between a node and an inserted valve);
  pipeline_nodes.link_state and inlet_pipe (pumps and control valves: closed, or passing supply from
  their inlet pipe only); pipeline_networks.length_source (drawn / recorded) and graph_version, bumped
  by triggers whenever a network's pipes, nodes or customers change, so cached graphs are rebuilt per
  network.

Frozen: explicit DDL, no model imported (the migration-drift test checks the models agree).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE cadastre_parcels ADD COLUMN attachment_geom geometry(Point, {srid});
COMMENT ON COLUMN cadastre_parcels.attachment_geom IS '定着物位置';
UPDATE cadastre_parcels SET status = 'retired' WHERE valid_to IS NOT NULL AND status <> 'retired';

CREATE TABLE landuse_survey_years (
  survey_year smallint PRIMARY KEY,
  class_system text NOT NULL,
  completeness text NOT NULL,
  declared boolean NOT NULL,
  patches integer NOT NULL,
  covered_area_m2 double precision NOT NULL,
  coverage double precision,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  note text,
  CONSTRAINT ck_landuse_survey_years_completeness_known CHECK (completeness IN ('complete','partial')),
  CONSTRAINT ck_landuse_survey_years_year_sane CHECK (survey_year BETWEEN 1980 AND 2100)
);
COMMENT ON TABLE landuse_survey_years IS '调查年度: complete or partial, declared or derived from coverage';
COMMENT ON COLUMN landuse_survey_years.survey_year IS '调查年度';
COMMENT ON COLUMN landuse_survey_years.completeness IS '完整或部分 complete or partial';
COMMENT ON COLUMN landuse_survey_years.declared IS 'declared when loaded (true) or derived from coverage';
COMMENT ON COLUMN landuse_survey_years.covered_area_m2 IS '覆盖面积 m²';
COMMENT ON COLUMN landuse_survey_years.coverage IS 'covered share of the reference (latest complete) year';
-- the years already loaded are taken as complete surveys (what the software assumed so far)
INSERT INTO landuse_survey_years (survey_year, class_system, completeness, declared, patches, covered_area_m2,
                                  coverage)
SELECT survey_year, min(class_system), 'complete', false, count(*), sum(plane_area), 1.0
  FROM landuse_survey_patches GROUP BY survey_year;

ALTER TABLE pipeline_pipes ADD COLUMN link_state text NOT NULL DEFAULT 'open';
ALTER TABLE pipeline_pipes ADD CONSTRAINT ck_pipeline_pipes_link_state_known
  CHECK (link_state IN ('open','closed','check'));
COMMENT ON COLUMN pipeline_pipes.link_state IS '运行状态 open/closed/check';
ALTER TABLE pipeline_pipes ADD COLUMN recorded_length_m double precision;
ALTER TABLE pipeline_pipes ADD CONSTRAINT ck_pipeline_pipes_recorded_length_positive
  CHECK (recorded_length_m IS NULL OR recorded_length_m > 0);
COMMENT ON COLUMN pipeline_pipes.recorded_length_m IS '记录长度 m';
ALTER TABLE pipeline_pipes ADD COLUMN source_link text;
COMMENT ON COLUMN pipeline_pipes.source_link IS '源管段';
ALTER TABLE pipeline_pipes ADD COLUMN valve_stub boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN pipeline_pipes.valve_stub IS '阀门短管';
ALTER TABLE pipeline_nodes ADD COLUMN link_state text;
ALTER TABLE pipeline_nodes ADD CONSTRAINT ck_pipeline_nodes_link_state_known
  CHECK (link_state IS NULL OR link_state IN ('open','closed','active'));
COMMENT ON COLUMN pipeline_nodes.link_state IS '泵或控制阀状态 open/closed/active';
ALTER TABLE pipeline_nodes ADD COLUMN inlet_pipe bigint;
-- deferred: a network's nodes and pipes refer to each other (bulk loads write the nodes first)
ALTER TABLE pipeline_nodes ADD CONSTRAINT fk_pipeline_nodes_inlet_pipe_pipeline_pipes FOREIGN KEY (inlet_pipe)
  REFERENCES pipeline_pipes (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;
COMMENT ON COLUMN pipeline_nodes.inlet_pipe IS '进口管';
ALTER TABLE pipeline_networks ADD COLUMN length_source text NOT NULL DEFAULT 'drawn';
ALTER TABLE pipeline_networks ADD CONSTRAINT ck_pipeline_networks_length_source_known
  CHECK (length_source IN ('drawn','recorded'));
COMMENT ON COLUMN pipeline_networks.length_source IS '长度依据';
ALTER TABLE pipeline_networks ADD COLUMN graph_version bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN pipeline_networks.graph_version IS 'bumped by every change to the network''s pipes, nodes, customers';

CREATE FUNCTION govgis_bump_network_graph() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE pipeline_networks SET graph_version = graph_version + 1
     WHERE id IN (SELECT DISTINCT network_id FROM new_rows);
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE pipeline_networks SET graph_version = graph_version + 1
     WHERE id IN (SELECT DISTINCT network_id FROM old_rows);
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION govgis_bump_network_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- the network's own attributes are part of its graph (name, utility, length source)
  IF NEW.graph_version = OLD.graph_version THEN
    NEW.graph_version := OLD.graph_version + 1;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER pipeline_networks_graph_version BEFORE UPDATE ON pipeline_networks
  FOR EACH ROW EXECUTE FUNCTION govgis_bump_network_row();
"""

GRAPH_TABLES = ("pipeline_pipes", "pipeline_nodes", "pipeline_customers")
TRIGGERS = """
CREATE TRIGGER {t}_graph_insert AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_network_graph();
CREATE TRIGGER {t}_graph_update AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_network_graph();
CREATE TRIGGER {t}_graph_delete AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_network_graph();
"""

DOWNGRADE = """
DROP TRIGGER pipeline_networks_graph_version ON pipeline_networks;
DROP FUNCTION govgis_bump_network_row();
DROP FUNCTION govgis_bump_network_graph() CASCADE;
ALTER TABLE pipeline_networks DROP COLUMN graph_version;
ALTER TABLE pipeline_networks DROP COLUMN length_source;
ALTER TABLE pipeline_nodes DROP COLUMN inlet_pipe;
ALTER TABLE pipeline_nodes DROP COLUMN link_state;
ALTER TABLE pipeline_pipes DROP COLUMN valve_stub;
ALTER TABLE pipeline_pipes DROP COLUMN source_link;
ALTER TABLE pipeline_pipes DROP COLUMN recorded_length_m;
ALTER TABLE pipeline_pipes DROP COLUMN link_state;
DROP TABLE landuse_survey_years;
UPDATE cadastre_parcels SET status = 'registered' WHERE status = 'retired';
ALTER TABLE cadastre_parcels DROP COLUMN attachment_geom;
"""


def upgrade() -> None:
    bind = op.get_bind()
    # the storage SRID the database was created with: the parcels' own geometry column says it
    srid = int(bind.execute(sa.text("SELECT Find_SRID(CAST(current_schema() AS varchar), 'cadastre_parcels', 'geom')")).scalar_one())
    op.execute(UPGRADE.format(srid=srid))
    for table in GRAPH_TABLES:
        op.execute(TRIGGERS.format(t=table))


def downgrade() -> None:
    op.execute(DOWNGRADE)
