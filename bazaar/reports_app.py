"""Report downloads over HTTP: every report as CSV, JSON or Parquet (and its chart).

    GET /reports                    the list: name, description, rows, computed_at, links
    GET /reports/<name>.csv|.json|.parquet|.png

Served by gunicorn on the reports port (`bazaar up`); reads what the Dagster
report assets stored under HOME/reports.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd
from flask import Flask, abort, jsonify, send_file, url_for

from bazaar.reports import REPORTS, load_meta, report_dir
from bazaar.settings import Settings, get_settings

FILES = {"csv": ("report.csv", "text/csv"), "parquet": ("report.parquet", "application/vnd.apache.parquet"),
         "png": ("chart.png", "image/png")}


def create_app(settings: Optional[Settings] = None) -> Flask:
    settings = settings or get_settings()
    app = Flask(__name__)

    @app.get("/reports")
    def index():
        out = []
        for name, report in REPORTS.items():
            meta = load_meta(settings.home, name)
            entry = {"name": name, "description": report.description, "computed_at": None, "rows": None}
            if meta:
                entry.update(computed_at=meta["computed_at"], rows=meta["rows"], downloads={
                    fmt: url_for("download", name=name, fmt=fmt, _external=True)
                    for fmt in ("csv", "json", "parquet") + (("png",) if "chart.png" in meta["files"] else ())})
            out.append(entry)
        return jsonify(out)

    @app.get("/reports/<name>.<fmt>")
    def download(name: str, fmt: str):
        if name not in REPORTS:
            abort(404, f"no report {name!r}; see /reports")
        folder = report_dir(settings.home, name)
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
