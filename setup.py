"""Bazaar: a trade engine and economy-analytics pipeline for online games."""

from setuptools import find_packages, setup

setup(
    name="bazaar",
    version="0.1.0",
    description="Trade engine and economy-analytics pipeline for online games",
    python_requires=">=3.11",
    packages=find_packages(include=["bazaar", "bazaar.*", "engine", "engine.*",
                                    "orchestration", "orchestration.*", "spark_jobs", "spark_jobs.*"]),
    package_data={"engine": ["lua/*.lua", "data/*.txt", "templates/*.html"]},
    install_requires=[
        "flask==3.1.3",
        "gunicorn==27.0.1",
        "redis==8.1.0",  # redis-py; works with Debian 12's redis-server 7.0
        "pydantic==2.14.3",
        "pydantic-settings==2.14.1",
        "click==8.5.1",
        "rich==15.0.0",
        "requests==2.34.2",
        "tenacity==9.2.1",
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "pytest-timeout==2.4.0",  # a hung service must fail a test, not the whole CI run
        ],
    },
    entry_points={"console_scripts": ["bazaar=bazaar.cli:main"]},
)
