"""Report downloads over HTTP: every report as CSV, JSON or Parquet (and its chart).

    GET /reports                    a page for a browser (Accept: text/html): each report's
                                    description, time computed, first rows, chart and links;
                                    JSON for API clients: name, description, rows, computed_at, downloads
    GET /reports/<name>.csv|.json|.parquet|.png
    GET /metrics                    the reports' and warehouse jobs' last success, the services'
                                    restarts, in Prometheus' text format (`orchestration.metrics`)
    GET /dashboard                  the last hour of `economy_minutes` as charts, refreshed every few
                                    seconds, and the pipeline's health (`orchestration.dashboard`)
    GET /dashboard/data             what it draws, as JSON

Served by gunicorn (`gunicorn 'orchestration.downloads:create_app()'`; `bazaar up`
runs it); reads what the Dagster report assets stored under `BAZAAR_REPORTS_DIR`.
"""

from __future__ import annotations

import time
from typing import Optional

import pandas as pd
from flask import Flask, Response, abort, jsonify, render_template, request, send_file, url_for
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from orchestration import dashboard
from orchestration.metrics import StoreCollector
from orchestration.reports import REPORTS, load_meta, report_dir
from orchestration.settings import ReportSettings, TrinoSettings

FILES = {"csv": ("report.csv", "text/csv"), "parquet": ("report.parquet", "application/vnd.apache.parquet"),
         "png": ("chart.png", "image/png")}
PREVIEW_ROWS = 10
REFRESH_S = 5  # the dashboard's refresh


def _entries(settings: ReportSettings) -> list[dict]:
    out = []
    for name, report in REPORTS.items():
        meta = load_meta(settings.reports_dir, name)
        entry = {"name": name, "description": report.description, "computed_at": None, "rows": None}
        if meta:
            entry.update(computed_at=meta["computed_at"], rows=meta["rows"], downloads={
                fmt: url_for("download", name=name, fmt=fmt, _external=True)
                for fmt in ("csv", "json", "parquet") + (("png",) if "chart.png" in meta["files"] else ())})
        out.append(entry)
    return out


def _preview(settings: ReportSettings, name: str) -> Optional[str]:
    path = report_dir(settings.reports_dir, name) / "report.parquet"
    if not path.exists():
        return None
    head = pd.read_parquet(path).head(PREVIEW_ROWS).convert_dtypes()  # ids with a null stay integers
    return head.astype(object).where(head.notna(), "-").to_html(index=False, border=0, classes="preview")


def create_app(settings: Optional[ReportSettings] = None) -> Flask:
    settings = settings or ReportSettings()
    app = Flask(__name__)
    registry = CollectorRegistry()
    registry.register(StoreCollector(settings))

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    trino = TrinoSettings()
    economy = dashboard.Cached(lambda: dashboard.economy(trino))
    pipeline = dashboard.Cached(lambda: dashboard.health(settings.prometheus_url))

    @app.get("/dashboard")
    def live():
        return render_template("dashboard.html", refresh_s=REFRESH_S, prometheus_url=settings.prometheus_url)

    @app.get("/dashboard/data")
    def live_data():
        return {"economy": economy(), "health": pipeline(), "at": int(time.time())}

    @app.get("/reports")
    def index():
        entries = _entries(settings)
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
            for entry in entries:
                entry["preview"] = _preview(settings, entry["name"]) if entry["rows"] is not None else None
            page = app.make_response(render_template("reports.html", reports=entries, preview_rows=PREVIEW_ROWS))
        else:
            page = jsonify(entries)
        page.vary.add("Accept")  # one URL, two representations: caches must keep them apart
        return page

    @app.get("/reports/<name>.<fmt>")
    def download(name: str, fmt: str):
        if name not in REPORTS:
            abort(404, f"no report {name!r}; see /reports")
        folder = report_dir(settings.reports_dir, name)
        if fmt == "json":
            path = folder / "report.parquet"
            if not path.exists():
                abort(404, f"report {name!r} has not been computed yet; materialize it in Dagster")
            frame = pd.read_parquet(path)
            return app.response_class(frame.to_json(orient="records", date_format="iso"),
                                      mimetype="application/json")
        if fmt not in FILES:
            abort(404, f"no format {fmt!r}; use csv, json, parquet or png")
        filename, mimetype = FILES[fmt]
        if not (folder / filename).exists():
            abort(404, f"report {name!r} has no {fmt} yet; materialize it in Dagster")
        return send_file(folder / filename, mimetype=mimetype, as_attachment=fmt != "png",
                         download_name=f"{name}.{fmt}")

    @app.errorhandler(404)
    def not_found(exc):
        return jsonify(error="not_found", message=exc.description), 404

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app
