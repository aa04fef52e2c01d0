"""Extract and load in one task: appointments of a window merged into a SQL table keyed by ``id``."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.extract import HubSpotAppointmentsExtractOperator
from airflow_provider_appointments.operators.lineage import (
    HUBSPOT_DATASET,
    _input_statistics,
    _output_statistics,
    _schema_facet,
    announce_assets,
    hubspot_namespace,
    openlineage_available,
)
from airflow_provider_appointments.records.sql import SqlSource
from airflow_provider_appointments.records.sql_load import MergeCounts, SqlLoad
from airflow_provider_appointments.records.sql_tables import (
    LoadStatements,
    appointment_columns,
    check_table_name,
    dialect_for,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

# Extract arguments whose columns have no portable SQL type (lists, nested history) or that change
# what the task returns.
_REFUSED = {"associations": "list columns", "properties_with_history": "nested columns",
            "return_dataframe": "a DataFrame", "archived": "only archived appointments (use include_archived)"}


class HubSpotAppointmentsToSqlOperator(HubSpotAppointmentsExtractOperator):
    """Extract appointments (as the extract operator does) and merge them into a SQL table by ``id``.

    Takes every argument of `HubSpotAppointmentsExtractOperator` — the window (``modified_after`` /
    ``modified_before``), ``properties``, ``search_lag``, ``deferrable``, ``fail_on_incomplete`` … —
    and loads through any Airflow connection whose hook is a common-sql ``DbApiHook``. A missing table
    is created: ``id`` (text primary key), one column per property typed from HubSpot's property
    schema, ``archived``, ``archived_at`` and ``loaded_at`` (when the row's values last changed). An
    existing table lacking a column fails before any HubSpot read, naming the columns. The extracts
    are staged in chunks, then merged in one transaction; rows equal to the table's are left alone,
    so re-running a window changes nothing.

    :param sql_conn_id: an Airflow connection whose hook is a common-sql ``DbApiHook``.
    :param table: the target table, ``table`` or ``schema.table`` (templated).
    :param staging_table: the staging table (templated); default ``<table>_staging_<hash of the task
        instance>`` beside the target, so a retry drops a killed try's leftover.
    :param chunk_rows: rows read from the extract and inserted per ``executemany``.
    :param include_archived: also extract the appointments archived in the window and mark them
        (``archived = true``, ``archived_at``), inserting those the table lacks.
    :param output_path: keep the extract of modified appointments there (templated; with ``asset_alias``
        it is then reported as an asset of its own); default a temporary file. Every ``Asset`` in
        ``outlets`` gets an event whose extra holds ``table``, the counts, the window and ``path``.
    :param archived_output_path: keep the extract of archived appointments there (templated).

    Returns to XCom ``{"table", "records", "modified", "archived", "inserted", "updated", "unchanged",
    "modified_after", "modified_before", "loaded_at", "path", "archived_path", "pages", "search_total",
    "complete", "waited_for_search_s"}``.
    """

    template_fields: Sequence[str] = (*HubSpotAppointmentsExtractOperator.template_fields, "table",
                                      "staging_table", "archived_output_path")
    ui_color = "#ff7a59"

    def __init__(self, *, sql_conn_id: str, table: str, staging_table: str | None = None, chunk_rows: int = 10_000,
                 include_archived: bool = True, output_path: str | None = None,
                 archived_output_path: str | None = None, asset_alias: str | None = None,
                 **kwargs: Any) -> None:
        refused = [f"{name} ({why})" for name, why in _REFUSED.items() if kwargs.get(name)]
        if refused:
            raise HubSpotInputError(f"{', '.join(refused)}: not loadable into a SQL table; extract them with "
                                    "HubSpotAppointmentsExtractOperator")
        if kwargs.get("file_format") not in (None, "parquet"):
            raise HubSpotInputError("the load reads its extracts as Parquet: file_format must be parquet")
        if int(chunk_rows) < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows!r}")
        # Only a kept file is an asset: a temporary one is gone when the task ends.
        super().__init__(output_path=output_path or "", file_format="parquet",
                         asset_alias=asset_alias if output_path else None, **kwargs)
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.staging_table = staging_table
        self.chunk_rows = int(chunk_rows)
        self.include_archived = include_archived
        self.archived_output_path = archived_output_path
        self.load_lineage: tuple | None = None

    def _extract(self, context: Context, after: datetime | None, before: datetime | None, waited_s: float) -> Any:
        """Check the table, extract (modified, then archived) to Parquet, stage and merge."""
        table = check_table_name(self.table, "table")
        source = SqlSource(f"SELECT * FROM {table}", self.sql_conn_id)
        hook = source.hook()
        schema = self._client().get_property_schema()  # the extract reuses this read
        statements = LoadStatements(table, self._staging_name(context, table),
                                    appointment_columns(schema, list(self.properties or schema.names())),
                                    dialect_for(hook.dialect_name), hook.dialect.escape_word)
        with self._load(hook, statements) as load:  # before any HubSpot read: a wrong table fails at once
            created = load.ensure_table()
        if created:
            self.log.info("created table %s (%d columns)", table, len(statements.columns))
        with tempfile.TemporaryDirectory(prefix="hubspot-to-sql-") as folder:
            modified = self._extract_part(context, after, before, waited_s, archived=False,
                                          path=self.output_path or f"{folder}/modified.parquet")
            extract_lineage = self.lineage
            archived = self._extract_part(context, after, before, 0.0, archived=True,
                                          path=self.archived_output_path or f"{folder}/archived.parquet") \
                if self.include_archived else None
            counts = self._merge(hook, statements, [part["path"] for part in (modified, archived) if part])
        self.lineage = extract_lineage
        summary = self._summary(table, modified, archived, counts)
        files = [(modified["path"], {"records": modified["records"], "archived": False,
                                     "modified_after": summary["modified_after"],
                                     "modified_before": summary["modified_before"]})] \
            if self.asset_alias and self.output_path else []
        announce_assets(context, self.outlets, self.asset_alias if self.output_path else None,
                        {key: summary.get(key) for key in ("table", "records", "modified", "archived", "inserted",
                                                           "updated", "path", "modified_after", "modified_before")},
                        files)
        self.load_lineage = (source, [(c.name, statements.sql_type(c)) for c in statements.columns],
                             summary["records"], counts)
        return summary

    def _staging_name(self, context: Context, table: str) -> str:
        if self.staging_table:
            staging = check_table_name(self.staging_table, "staging_table")
            if staging.rpartition(".")[2].casefold() == table.rpartition(".")[2].casefold():
                raise HubSpotInputError(f"staging_table {staging!r} names the table {table!r} itself: the load drops "
                                        "its staging table, so give it a name of its own")
            return staging
        ti = context.get("ti")
        identity = "|".join(str(getattr(ti, name, "")) for name in ("dag_id", "task_id", "run_id", "map_index"))
        schema, _, name = table.rpartition(".")
        staging = f"{name[:40]}_staging_{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
        return f"{schema}.{staging}" if schema else staging

    @contextlib.contextmanager
    def _load(self, hook: Any, statements: LoadStatements) -> Iterator[SqlLoad]:
        """A load on a connection of its own (DuckDB lets one process at a time hold a file open, so
        none is held while HubSpot is read)."""
        connection = hook.get_conn()
        if getattr(hook, "supports_autocommit", False):
            hook.set_autocommit(connection, False)
        fields = statements.staged_fields  # common-sql's insert, quoting the names as it does elsewhere
        insert_sql = hook.dialect.generate_insert_sql(statements.staging, [None] * len(fields), fields)
        load = SqlLoad(connection, statements, insert_sql, self.chunk_rows)
        try:
            yield load
        finally:
            load.close()

    def _extract_part(self, context: Context, after: datetime | None, before: datetime | None, waited_s: float,
                      *, archived: bool, path: str) -> dict:
        """One extract by the extract operator's own code, which reads these attributes: set for the call,
        then restored (the operator stays as Airflow rendered it)."""
        saved = (self.output_path, self.archived, self.asset_alias)
        kept = path in (self.output_path, self.archived_output_path)
        self.output_path, self.archived = path, archived
        self.asset_alias = saved[2] if kept and not archived else None
        self.announces = False  # the load's own event names the table (below), not a part's file
        try:
            return super()._extract(context, after, before, waited_s)
        finally:
            self.output_path, self.archived, self.asset_alias = saved
            self.announces = True

    def _merge(self, hook: Any, statements: LoadStatements, paths: list[str]) -> MergeCounts:
        loaded_at = datetime.now(timezone.utc)
        with self._load(hook, statements) as load:
            try:
                staged = load.stage(paths, loaded_at)
                self.log.info("staged %d rows in %s", staged, statements.staging)
                counts = load.merge() if staged else MergeCounts(0, 0, 0)
            finally:
                load.drop_staging()
        self.log.info("merged into %s: %d inserted, %d updated, %d unchanged", statements.table, counts.inserted,
                      counts.updated, counts.unchanged)
        return counts

    def _summary(self, table: str, modified: dict, archived: dict | None, counts: MergeCounts) -> dict:
        archived_records = archived["records"] if archived else 0
        return {"table": table, "records": modified["records"] + archived_records, "modified": modified["records"],
                "archived": archived_records, "inserted": counts.inserted, "updated": counts.updated,
                "unchanged": counts.unchanged, "modified_after": modified["modified_after"],
                "modified_before": modified["modified_before"], "path": self.output_path or None,
                "archived_path": self.archived_output_path if archived else None, "pages": modified["pages"],
                "search_total": modified["search_total"], "complete": modified["complete"],
                "waited_for_search_s": modified["waited_for_search_s"]}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: read HubSpot's appointments (the extracted columns), wrote the table (its columns)."""
        if not (self.lineage and self.load_lineage and openlineage_available()):
            return None
        from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        base_url, _, columns, _ = self.lineage
        source, table_columns, records, counts = self.load_lineage
        named = source.lineage_tables()  # the table named as a SQL source's tables are
        connection = source.hook().get_connection(self.sql_conn_id)
        namespace, name = named[0] if named else (f"{connection.conn_type}://{connection.host or self.sql_conn_id}",
                                                  self.table)
        hubspot = InputDataset(namespace=hubspot_namespace(base_url), name=HUBSPOT_DATASET,
                               facets={"schema": _schema_facet(columns)}, inputFacets=_input_statistics(records))
        target = OutputDataset(namespace=namespace, name=name, facets={"schema": _schema_facet(table_columns)},
                               outputFacets=_output_statistics(counts.inserted + counts.updated))
        return OperatorLineage(inputs=[hubspot], outputs=[target])
