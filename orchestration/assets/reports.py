"""The economy reports: a query file each, stored as CSV and Parquet with a chart."""


import base64
import time

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from orchestration import reports
from orchestration.assets.pipeline import hive_tables
from orchestration.resources import ReportStoreResource, TrinoResource

PREVIEW_ROWS = 20


def report_asset(report: reports.Report):
    @asset(name=report.name, group_name="reports", deps=[hive_tables], description=report.description)
    def _report(context: AssetExecutionContext, trino: TrinoResource,
                report_store: ReportStoreResource) -> MaterializeResult:
        start = time.monotonic()
        frame = report.run(trino.query)
        meta = report_store.store(report.name, frame, round(time.monotonic() - start, 3))
        metadata = {"rows": len(frame), "computed_at": meta["computed_at"],
                    "preview": MetadataValue.md(frame.head(PREVIEW_ROWS).to_markdown(index=False))}
        chart = report_store.folder(report.name) / "chart.png"
        if "chart.png" in meta["files"]:
            encoded = base64.b64encode(chart.read_bytes()).decode()
            metadata["chart"] = MetadataValue.md(f"![{report.name}](data:image/png;base64,{encoded})")
        context.log.info(f"{report.name}: {len(frame)} rows")
        return MaterializeResult(metadata=metadata)
    return _report


report_assets = [report_asset(r) for r in reports.REPORTS.values()]
