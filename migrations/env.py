"""Alembic environment: psycopg 3, the CLI's DSN rules, and the re-applied parts of sql/."""

from logging.config import fileConfig

import psycopg
import sqlalchemy
from alembic import context
from gstjobs import preflight
from gstjobs.db import ConnectError, connect
from gstjobs.resources import named_queries
from gstjobs.schema import apply_reapplied, reapply_steps

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

# Our own name, in public: it must outlive `downgrade base`, which drops schema gstjobs.
VERSION_TABLE = "gstjobs_alembic_version"


def run_migrations_online() -> None:
    dsn = context.get_x_argument(as_dictionary=True).get("dsn")
    # what is wrong is said before anything is changed: one line and its fix, no traceback
    try:
        with connect(dsn, autocommit=True) as first:
            refused = preflight.refusal(first) if upgrading() else None
    except ConnectError as error:
        raise SystemExit(f"gstjobs: {error}") from None
    if refused:
        raise SystemExit(refused)
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
            if removing():
                refuse_removal(connection.connection.driver_connection)
            context.run_migrations()
            driver = connection.connection.driver_connection
            heads = context.get_context().get_current_heads()
            if heads and set(heads) == set(context.script.get_heads()):
                apply_reapplied(driver, VERSION_TABLE)
            elif not heads:
                # At base nothing of gstjobs is left, not even Alembic's bookkeeping.
                driver.execute(f"DROP TABLE IF EXISTS public.{VERSION_TABLE}")


def upgrading() -> bool:
    command = getattr(context.config.cmd_opts, "cmd", None)
    return command is not None and command[0].__name__ == "upgrade"


def removing() -> bool:
    """Whether this is `alembic downgrade base` (Alembic names the target base as None)."""
    options = context.config.cmd_opts
    command = getattr(options, "cmd", None)
    return (
        command is not None
        and command[0].__name__ == "downgrade"
        and context.get_revision_argument() in (None, "base")
    )


def refuse_removal(driver: psycopg.Connection) -> None:  # type: ignore[type-arg]
    """Before gstjobs is removed: stop, naming them, if objects outside gstjobs depend on it,
    or if it holds firms' data and the DBA did not say -x drop-data=yes (sql/removal.sql)."""
    installed = driver.execute("SELECT to_regclass('litigation.tenants') IS NOT NULL").fetchone()
    if not installed or not installed[0]:
        return
    drop_data = context.get_x_argument(as_dictionary=True).get("drop-data", "")
    driver.execute("SELECT set_config('gstjobs.drop_data', %s, true)", (drop_data,))
    try:
        driver.execute(named_queries("removal.sql")["refuse-removal"].encode())
    except psycopg.Error as refused:
        hint = refused.diag.message_hint
        raise SystemExit(
            f"gstjobs: not removed: {refused.diag.message_primary}"
            + (f"\nhint: {hint}" if hint else "")
        ) from None


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: the complete SQL of the upgrade, re-applied part and
    PL/Python bodies included, for a DBA to read and to apply with psql. Only an upgrade to
    head: a removal checks the database first, which a script cannot do."""
    to_head = context.get_revision_argument() in ("head", "heads", *context.script.get_heads())
    if not upgrading() or not to_head:
        raise SystemExit(
            "gstjobs: --sql writes an upgrade to head only: alembic upgrade head --sql"
        )
    context.configure(
        dialect_name="postgresql",
        version_table=VERSION_TABLE,
        transaction_per_migration=False,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.static_output(
            "-- gstjobs: the upgrade to head as `alembic upgrade head` runs it. Apply with\n"
            "--   psql -v ON_ERROR_STOP=1 -d <the database cron.database_name names> -f <this>\n"
            "-- as a superuser, after `gstjobs doctor --preflight` passes.\n"
        )
        context.run_migrations()
        for step in reapply_steps(VERSION_TABLE):
            context.static_output(step.rstrip() + "\n")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
