"""Alembic environment: psycopg 3, the CLI's DSN rules, and the re-applied parts of sql/."""

from logging.config import fileConfig

import sqlalchemy
from alembic import context
from gstjobs.db import connect
from gstjobs.schema import apply_reapplied

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

# Our own name, in public: it must outlive `downgrade base`, which drops schema gstjobs.
VERSION_TABLE = "gstjobs_alembic_version"


def run_migrations_online() -> None:
    dsn = context.get_x_argument(as_dictionary=True).get("dsn")
    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: connect(dsn), poolclass=sqlalchemy.pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            version_table=VERSION_TABLE,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()
            driver = connection.connection.driver_connection
            heads = context.get_context().get_current_heads()
            if heads and set(heads) == set(context.script.get_heads()):
                apply_reapplied(driver)
                # `gstjobs doctor` checks, as an operator, that the database is at head
                driver.execute(f"GRANT SELECT ON public.{VERSION_TABLE} TO gstjobs_operator")
            elif not heads:
                # At base nothing of gstjobs is left, not even Alembic's bookkeeping.
                driver.execute(f"DROP TABLE IF EXISTS public.{VERSION_TABLE}")


if context.is_offline_mode():
    raise SystemExit("gstjobs migrations run online only: they render PL/Python from plpy/")
run_migrations_online()
