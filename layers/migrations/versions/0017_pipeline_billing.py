"""The billing-system interface of customer management (用户管理): import batches and meter readings
(frozen DDL).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipeline_billing_imports',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False, comment='accounts/readings'),
    sa.Column('network_id', sa.Integer(), nullable=True, comment='管网'),
    sa.Column('source', sa.Text(), nullable=False, comment='csv/json/demo'),
    sa.Column('filename', sa.Text(), nullable=True, comment='上传文件名'),
    sa.Column('received', sa.Integer(), nullable=False, comment='收到行数'),
    sa.Column('inserted', sa.Integer(), server_default='0', nullable=False, comment='新增'),
    sa.Column('updated', sa.Integer(), server_default='0', nullable=False, comment='更正'),
    sa.Column('unchanged', sa.Integer(), server_default='0', nullable=False, comment='重复导入未变'),
    sa.Column('refused', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False,
              comment='拒收行及原因'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('department', sa.Text(), server_default='govgis', nullable=False, comment='所属部门'),
    sa.CheckConstraint("kind IN ('accounts','readings')", name=op.f('ck_pipeline_billing_imports_kind_known')),
    sa.CheckConstraint("source IN ('csv','json','demo')", name=op.f('ck_pipeline_billing_imports_source_known')),
    sa.ForeignKeyConstraint(['network_id'], ['pipeline_networks.id'],
                            name=op.f('fk_pipeline_billing_imports_network_id_pipeline_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_billing_imports'))
    )
    op.create_table('pipeline_meter_readings',
    sa.Column('customer_id', sa.BigInteger(), nullable=False, comment='用户'),
    sa.Column('kind', sa.Text(), nullable=False, comment='billing 抄表 / interval 智能表时段'),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False, comment='抄表时间 (时段结束)'),
    sa.Column('consumption', sa.Numeric(precision=14, scale=3), nullable=False, comment='用量 (自上次抄表)'),
    sa.Column('register_value', sa.Numeric(precision=14, scale=3), nullable=True, comment='表底数'),
    sa.Column('import_id', sa.BigInteger(), nullable=True, comment='导入批次'),
    sa.CheckConstraint("kind IN ('billing','interval')", name=op.f('ck_pipeline_meter_readings_kind_known')),
    sa.CheckConstraint('consumption >= 0', name=op.f('ck_pipeline_meter_readings_consumption_positive')),
    sa.CheckConstraint('register_value IS NULL OR register_value >= 0',
                       name=op.f('ck_pipeline_meter_readings_register_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['pipeline_customers.id'],
                            name=op.f('fk_pipeline_meter_readings_customer_id_pipeline_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['import_id'], ['pipeline_billing_imports.id'],
                            name=op.f('fk_pipeline_meter_readings_import_id_pipeline_billing_imports'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('customer_id', 'kind', 'read_at', name=op.f('pk_pipeline_meter_readings'))
    )
    op.create_index('ix_pipeline_meter_readings_read_at', 'pipeline_meter_readings', ['read_at'], unique=False,
                    postgresql_using='brin')


def downgrade() -> None:
    op.drop_index('ix_pipeline_meter_readings_read_at', table_name='pipeline_meter_readings',
                  postgresql_using='brin')
    op.drop_table('pipeline_meter_readings')
    op.drop_table('pipeline_billing_imports')
