"""Alembic's environment: the registry's and the service's tables share one metadata (``Base``).

``api.store.migrate`` hands the connection in through ``config.attributes``; the ``alembic`` command
line works too (``alembic -x url=... upgrade head`` from this folder's parent with a config naming it).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import api.store  # noqa: F401  (registers the service tables on Base)
from knowledge.registry import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(str(url))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


run()
