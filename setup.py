"""Bazaar: a trade engine and economy-analytics pipeline for online games."""

from setuptools import find_packages, setup

setup(
    name="bazaar",
    version="0.1.0",
    description="Trade engine and economy-analytics pipeline for online games",
    python_requires=">=3.11",
    # the runtime (engine, spark_jobs, orchestration, sql as package data) and the tooling around it (bazaar)
    packages=find_packages(include=["bazaar", "bazaar.*", "engine", "engine.*", "orchestration",
                                    "orchestration.*", "spark_jobs", "spark_jobs.*", "sql"]),
    package_data={"engine": ["lua/*.lua", "data/*.txt", "templates/*.html"],
                  "bazaar.stack": ["java/*.java", "prometheus/*.yml"],
                  "orchestration": ["templates/*.html", "static/vendor/uplot/*"], "sql": ["*.sql", "*/*.sql", "README.md"]},
    install_requires=[
        "flask==3.1.3",
        "gunicorn==27.0.1",  # the report downloads' server
        # the engine's server: HTTP and keep-alive in Rust; twice gunicorn's requests/s for a minimal Flask
        # route here, and ~0.8 ms less CPU per trade (README, benchmarks)
        "granian==2.8.9",
        "redis==8.1.0",  # redis-py; works with Debian 12's redis-server 7.0
        "hiredis==3.5.0",  # redis-py's C reply parser: less CPU per round trip in the engine and the relay
        "pydantic==2.14.3",
        "orjson==3.13.0",  # the trade's state events serialized from plain data (a third of pydantic's cost)
        "pydantic-settings==2.14.1",
        "click==8.5.1",
        "rich==15.0.0",
        "requests==2.34.2",
        "urllib3==2.7.0",  # the simulator's HTTP client: half the CPU per request of requests
        "tenacity==9.2.1",
        "kafka-python==3.0.12",
        "crc32c==2.9.post0",  # C CRC32C for kafka-python: ~4x the producer's throughput
        # the relay's producer (librdkafka, with zstd/lz4/snappy built in): a tenth of kafka-python's
        # CPU per event; kafka-python stays for the topic's administration and the tests' consumers
        "confluent-kafka==2.16.1",
        "zstandard==0.25.0",  # kafka-python's consumers (tests, benchmarks) read the relay's zstd batches
        # 4.2.0, not 4.3.0: the Spark Kafka connector must match pyspark exactly, and Maven
        # Central has spark-sql-kafka-0-10_2.13 only up to 4.2.0. Its jars also carry the
        # Hive 2.3 metastore the local stack runs.
        "pyspark==4.2.0",
        "pyhive[trino]==0.7.0",
        "thrift==0.25.0",  # the metastore health check speaks thrift directly
        "pandas==2.3.3",  # pyspark 4.2 does not support pandas 3 yet
        "pyarrow==26.0.1",
        # 1.13.27, not the newest: dagster-postgres (the cluster shape's instance storage) is released
        # after dagster and pins it exactly; its newest, 0.29.27, goes with dagster 1.13.27. Raise
        # the four together (libraries 0.(N+16).P go with dagster 1.N.P).
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",  # must match dagster's version
        "dagster-graphql==1.13.27",  # the demo submits the reports job to the running Dagster
        "dagster-postgres==0.29.27",
        "matplotlib==3.11.2",
        "tabulate==0.10.0",  # pandas' to_markdown, for report previews in the Dagster UI
        # every process's metrics in Prometheus' text format; its multiprocess mode for granian's workers
        "prometheus-client==0.26.0",
        "psutil==7.2.2",
        "pyyaml==6.0.4",  # the stack's Prometheus configuration  # which program holds a port a service needs (`bazaar up` names it)
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "pytest-timeout==2.4.0",  # a hung service must fail a test, not the whole CI run
            # drives Debian's chromium (executable_path), never a downloaded browser
            "playwright==1.65.2",
            "import-linter==2.5",  # the contract that the runtime packages never import the tooling
            "schemathesis==4.32.5",  # fuzzes the engine against its own OpenAPI document
            "fsspec==2026.9.0",  # the cluster tests read the tables' Parquet on HDFS over WebHDFS
        ],
    },
    entry_points={"console_scripts": ["bazaar=bazaar.cli:main"]},
)
