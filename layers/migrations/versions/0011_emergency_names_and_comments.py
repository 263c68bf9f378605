"""The emergency tables as the models declare them: constraint names and column comments.

Revision 0007 created its checks under doubled names (``ck_<table>_ck_<table>_…``, some cut and hashed)
and left out the column comments the models carry; this renames the constraints to the models' names
and adds the comments. (Found by the migration-drift test, tests/test_foundation_migrations.py.)
Frozen: explicit operations, no model imported.

Revision ID: 0011
Revises: 0009 (the domain rules; was 0008 on main: re-pointed when merging the domain branch, one head)
"""

from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

# (table, name 0007 gave, name of the models)
RENAMES = (
    ("emergency_assignments", "ck_emergency_assignments_ck_emergency_assignments_method_known",
     "ck_emergency_assignments_method_known"),
    ("emergency_incident_areas", "ck_emergency_incident_areas_ck_emergency_incident_areas_5edf",
     "ck_emergency_incident_areas_kind_known"),
    ("emergency_incident_areas", "ck_emergency_incident_areas_ck_emergency_incident_areas_9ae6",
     "ck_emergency_incident_areas_valid_period"),
    ("emergency_incident_areas", "ck_emergency_incident_areas_ck_emergency_incident_areas_ab0b",
     "ck_emergency_incident_areas_geom_valid"),
    ("emergency_incident_duplicates", "ck_emergency_incident_duplicates_ck_emergency_incident__b2c2",
     "ck_emergency_incident_duplicates_state_known"),
    ("emergency_incident_status", "ck_emergency_incident_status_ck_emergency_incident_stat_536d",
     "ck_emergency_incident_status_status_known"),
    ("emergency_population_cells", "ck_emergency_population_cells_ck_emergency_population_c_cc7c",
     "ck_emergency_population_cells_population_nonnegative"),
    ("emergency_road_closures", "ck_emergency_road_closures_ck_emergency_road_closures_g_bc49",
     "ck_emergency_road_closures_geom_valid"),
    ("emergency_road_closures", "ck_emergency_road_closures_ck_emergency_road_closures_window",
     "ck_emergency_road_closures_window"),
    ("emergency_stock_ledger", "ck_emergency_stock_ledger_ck_emergency_stock_ledger_bal_70b4",
     "ck_emergency_stock_ledger_balance_nonnegative"),
    ("emergency_stock_ledger", "ck_emergency_stock_ledger_ck_emergency_stock_ledger_iss_42f3",
     "ck_emergency_stock_ledger_issue_negative"),
    ("emergency_stock_ledger", "ck_emergency_stock_ledger_ck_emergency_stock_ledger_kind_known",
     "ck_emergency_stock_ledger_kind_known"),
    ("emergency_stock_ledger", "ck_emergency_stock_ledger_ck_emergency_stock_ledger_rec_6528",
     "ck_emergency_stock_ledger_receipt_positive"),
    ("emergency_incident_duplicates", "uq_emergency_incident_duplicates_pair",
     "uq_emergency_incident_duplicates_incident_id_candidate_id"),
)

# (table, column, comment) the models carry and 0007 did not write
COMMENTS = (
    ("emergency_assignments", "eta_at", "预计到达"),
    ("emergency_assignments", "method", "network 路网 / straight_line 直线估计"),
    ("emergency_incident_areas", "kind", "incident 事发范围 / impact 影响范围"),
    ("emergency_incident_log", "kind", "situation_report/dispatch/arrival/release/status/merge/issue/pipeline/note"),
    ("emergency_incidents", "type_code", "事件类型代码 (data/codes/emergency_incident_types)"),
    ("emergency_incidents", "category", "事件类别 公安/交通/市政/卫生/生产安全/消防/自然灾害"),
    ("emergency_incidents", "merged_into", "并入的事件 (重复报警)"),
    ("emergency_population_cells", "version", "行版本 row version"),
    ("emergency_population_cells", "cell_m", "格网边长 m"),
    ("emergency_population_cells", "residential_area_m2", "居住用地面积"),
    ("emergency_population_cells", "population", "估算人口"),
    ("emergency_population_cells", "method", "估算方法"),
    ("emergency_resources", "beds_total", "床位 (医院)"),
    ("emergency_resources", "beds_available", "空余床位 (医院)"),
    ("emergency_resources", "home_geom", "驻地 home location"),
    ("emergency_road_closures", "version", "行版本 row version"),
    ("emergency_road_closures", "reason", "封闭原因"),
    ("emergency_road_closures", "edge_ids", "封闭路段 (空: 与范围相交的路段)"),
    ("emergency_shelters", "occupancy", "当前安置人数"),
    ("emergency_stock", "min_quantity", "最低储备量"),
)

RENAME_IF_PRESENT = """
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{old}' AND conrelid = '{table}'::regclass) THEN
    ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new};
  END IF;
END $$"""


def upgrade() -> None:
    for table, old, new in RENAMES:
        op.execute(RENAME_IF_PRESENT.format(table=table, old=old, new=new))
    for table, column, comment in COMMENTS:
        op.execute(f"COMMENT ON COLUMN {table}.{column} IS '" + comment.replace("'", "''") + "'")


def downgrade() -> None:
    for table, old, new in RENAMES:
        op.execute(RENAME_IF_PRESENT.format(table=table, old=new, new=old))
